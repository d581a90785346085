"""Network code of Swin-Unet (Cao et al., arXiv 2105.05537) and Attention Swin U-Net (Aghdam et al., ISBI 2023).

Independent implementation from the papers and the published key layout. The Swin blocks, window
helpers and 2D patch merging are MONAI's (``monai.networks.nets.swin_unetr``), so module names
follow the official Swin-Unet checkpoints except inside the MLP (MONAI ``mlp.linear1/linear2``
for the official ``mlp.fc1/fc2``); ``medswin.models.swin_unet`` holds the key maps.

Tensors between stages are channel-last token grids ``(B, H, W, C)``. Attention masks are
computed at run time (MONAI pads to window multiples), so any input whose sides are divisible by
``patch_size * 2**(stages-1)`` (32 by default) works, not only the construction size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.networks.nets.swin_unetr import PatchMergingV2, SwinTransformerBlock, compute_mask, get_window_size
from torch import nn

from medswin.models.inputs import check_input_shape

__all__ = [
    "PatchEmbed2d",
    "run_swin_blocks",
    "SwinStage2d",
    "PatchExpand",
    "CrossContextAttention",
    "SwinUnet",
]


class PatchEmbed2d(nn.Module):
    """Non-overlapping patch partition + linear embedding: ``(B, C, H, W)`` -> ``(B, H/p, W/p, E)``.

    Args:
        in_channels: image channels C.
        embed_dim: token channels E.
        patch_size: patch side p in pixels (kernel = stride).
        patch_norm: LayerNorm over E after the projection (Swin-Unet: True).
    """

    def __init__(self, in_channels: int, embed_dim: int, patch_size: int, patch_norm: bool = True) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dim) if patch_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x).permute(0, 2, 3, 1)
        return self.norm(x) if self.norm is not None else x


class PatchExpand(nn.Module):
    """Patch expanding: Linear then depth-to-space, ``(B, H, W, C)`` -> ``(B, sH, sW, C_out)``.

    The expanded channel axis is read as ``(s_row, s_col, C_out)`` with ``s_row`` outermost, the
    factorisation published Swin-Unet weights were trained with.

    Args:
        dim: input channels C.
        scale: spatial factor s (2 inside the decoder, 4 for the final expansion).
        out_dim: output channels (default ``dim // 2`` for s=2, ``dim`` for s=4, as in Swin-Unet).
    """

    def __init__(self, dim: int, scale: int = 2, out_dim: int | None = None) -> None:
        super().__init__()
        self.scale = scale
        self.out_dim = out_dim if out_dim is not None else (dim // 2 if scale == 2 else dim)
        self.expand = nn.Linear(dim, scale * scale * self.out_dim, bias=False)
        self.norm = nn.LayerNorm(self.out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, _ = x.shape
        s = self.scale
        x = self.expand(x).view(b, h, w, s, s, self.out_dim)
        x = x.permute(0, 1, 3, 2, 4, 5).reshape(b, h * s, w * s, self.out_dim)
        return self.norm(x)


def run_swin_blocks(blocks: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """``x`` ``(B, H, W, C)`` through 2D Swin blocks in turn, each shifted block with its attention mask.

    Masks are made once per (window, shift) on the grid zero-padded to whole windows; padded tokens
    take part unmasked, as in the official Swin-Unet and Swin-X2S models.
    """
    _, h, w, _ = x.shape
    masks: dict[tuple[tuple[int, ...], tuple[int, ...]], torch.Tensor] = {}
    for block in blocks:
        window, shift = get_window_size((h, w), block.window_size, block.shift_size)
        mask = None
        if any(shift):
            key = (tuple(window), tuple(shift))
            if key not in masks:
                padded = [-(-h // window[0]) * window[0], -(-w // window[1]) * window[1]]
                masks[key] = compute_mask(padded, window, shift, x.device)
            mask = masks[key]
        x = block(x, mask)
    return x


class SwinStage2d(nn.Module):
    """Swin blocks at one resolution (W-MSA / SW-MSA alternating), then optional merge or expand.

    Windows larger than the stage's construction resolution shrink to it and lose their shift (as
    in the Microsoft implementation), so the relative-position tables have the published shapes.

    Args:
        dim: channels C.
        depth: number of Swin blocks.
        num_heads: attention heads.
        window_size: attention window side (tokens).
        resolution: token-grid side at the construction image size (for window clamping).
        drop_path: stochastic-depth rate per block (``depth`` values).
        resample: ``"merge"`` (PatchMerging, -> (H/2, W/2, 2C)), ``"expand"`` (PatchExpand,
            -> (2H, 2W, C/2)) or ``None``.
        mlp_ratio / qkv_bias / drop / attn_drop / use_checkpoint: as in MONAI's block.

    Input and output ``(B, H, W, C)`` token grids.
    """

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        window_size: int,
        resolution: int,
        drop_path: Sequence[float],
        resample: str | None = None,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        use_checkpoint: bool = False,
    ) -> None:
        super().__init__()
        window = min(window_size, resolution)
        shift = window // 2 if resolution > window_size else 0
        self.blocks = nn.ModuleList(
            SwinTransformerBlock(
                dim=dim,
                num_heads=num_heads,
                window_size=(window, window),
                shift_size=(0, 0) if i % 2 == 0 else (shift, shift),
                mlp_ratio=mlp_ratio,
                qkv_bias=qkv_bias,
                drop=drop,
                attn_drop=attn_drop,
                drop_path=float(drop_path[i]),
                use_checkpoint=use_checkpoint,
            )
            for i in range(depth)
        )
        self.downsample = PatchMergingV2(dim, spatial_dims=2) if resample == "merge" else None
        self.upsample = PatchExpand(dim, scale=2) if resample == "expand" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = run_swin_blocks(self.blocks, x)
        if self.downsample is not None:
            x = self.downsample(x)
        if self.upsample is not None:
            x = self.upsample(x)
        return x


class _CLSCrossAttention(nn.Module):
    """One CrossViT cross-attention: a single (class) token attends to itself + another branch's tokens.

    Only the query token is layer-normed; the other branch's tokens enter the keys/values as they are.
    """

    def __init__(self, dim: int, heads: int, dim_head: int, dropout: float) -> None:
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, 2 * inner, bias=False)
        self.to_out = nn.Linear(inner, dim)
        self.dropout = dropout

    def forward(self, cls: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """``cls`` (B, 1, C), ``context`` (B, L, C) -> update for ``cls`` (B, 1, C)."""
        x = self.norm(cls)
        keys = torch.cat([x, context], dim=1)
        b = x.shape[0]
        q = self.to_q(x).view(b, 1, self.heads, -1).transpose(1, 2)
        k, v = (
            t.view(b, keys.shape[1], self.heads, -1).transpose(1, 2)
            for t in self.to_kv(keys).chunk(2, dim=-1)
        )
        p = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=p).transpose(1, 2).reshape(b, 1, -1)
        return F.dropout(self.to_out(out), p, self.training)


class CrossContextAttention(nn.Module):
    """Cross-contextual attention between decoder and skip tokens (Attention Swin U-Net skip fusion).

    Each branch's global token is the mean of all its tokens; it replaces the branch's first token
    and exchanges information with the other branch's remaining tokens through ``depth`` rounds of
    CLS cross-attention (CrossViT). Only that one token per branch changes; the Swin blocks after
    the fusion spread it. This follows the released code, which differs from the paper's figure.

    Args:
        dim: channels C of both branches.
        depth: rounds (2 in the paper's code).
        heads / dim_head: attention heads and head width (8 × 64).
        dropout: attention output dropout.

    ``forward(decoder, skip)``: two ``(B, H, W, C)`` grids -> the same two grids, updated.
    """

    def __init__(
        self, dim: int, depth: int = 2, heads: int = 8, dim_head: int = 64, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList(
                [
                    _CLSCrossAttention(dim, heads, dim_head, dropout),
                    _CLSCrossAttention(dim, heads, dim_head, dropout),
                ]
            )
            for _ in range(depth)
        )

    def forward(self, decoder: torch.Tensor, skip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = decoder.shape
        dec_tokens, skip_tokens = decoder.flatten(1, 2), skip.flatten(1, 2)
        dec_cls, skip_cls = dec_tokens.mean(1, keepdim=True), skip_tokens.mean(1, keepdim=True)
        dec_rest, skip_rest = dec_tokens[:, 1:], skip_tokens[:, 1:]
        for dec_attends_skip, skip_attends_dec in self.layers:
            dec_cls = dec_attends_skip(dec_cls, skip_rest) + dec_cls
            skip_cls = skip_attends_dec(skip_cls, dec_rest) + skip_cls
        decoder = torch.cat([dec_cls, dec_rest], dim=1).view(shape)
        skip = torch.cat([skip_cls, skip_rest], dim=1).view(shape)
        return decoder, skip


class SwinUnet(nn.Module):
    """Swin-Unet: Swin encoder, Swin bottleneck, patch-expanding Swin decoder with concat skips.

    Args:
        in_channels: image channels (the official model takes 3; grayscale is the same as summing
            the RGB patch-embedding weights, which the key map does).
        out_channels: classes (logits, no activation).
        img_size: construction image side (224); sets window clamping per stage.
        patch_size: patch partition side (4).
        embed_dim: stage-1 channels (96); stage s has ``embed_dim * 2**s``.
        depths / num_heads: per encoder stage; the decoder mirrors them (as the official code does).
        window_size: attention window (7).
        skip_attention: add cross-contextual attention to the first ``skip_attention_levels`` skips
            counted from the bottleneck (Attention Swin U-Net); ``False`` is plain Swin-Unet.

    Input ``(B, in_channels, H, W)`` with H, W divisible by ``patch_size * 2**(len(depths)-1)``;
    output ``(B, out_channels, H, W)``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 9,
        img_size: int = 224,
        patch_size: int = 4,
        embed_dim: int = 96,
        depths: Sequence[int] = (2, 2, 2, 2),
        num_heads: Sequence[int] = (3, 6, 12, 24),
        window_size: int = 7,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.1,
        patch_norm: bool = True,
        use_checkpoint: bool = False,
        skip_attention: bool = False,
        skip_attention_levels: int = 3,
        skip_attention_depth: int = 2,
        skip_attention_heads: int = 8,
        skip_attention_dim_head: int = 64,
    ) -> None:
        super().__init__()
        stages = len(depths)
        self.in_channels = in_channels
        self.multiple = patch_size * 2 ** (stages - 1)
        self.skip_attention_levels = skip_attention_levels if skip_attention else 0
        dims = [embed_dim * 2**s for s in range(stages)]
        res = [img_size // patch_size // 2**s for s in range(stages)]
        total = sum(depths)
        rates = [drop_path_rate * i / (total - 1) if total > 1 else 0.0 for i in range(total)]  # linear ramp
        start = [sum(depths[:s]) for s in range(stages)]

        def stage(s: int, resample: str | None) -> SwinStage2d:
            return SwinStage2d(
                dims[s],
                depths[s],
                num_heads[s],
                window_size,
                res[s],
                rates[start[s] : start[s] + depths[s]],
                resample,
                mlp_ratio,
                qkv_bias,
                drop_rate,
                attn_drop_rate,
                use_checkpoint,
            )

        self.patch_embed = PatchEmbed2d(in_channels, embed_dim, patch_size, patch_norm)
        self.pos_drop = nn.Dropout(drop_rate)
        self.layers = nn.ModuleList(stage(s, "merge" if s < stages - 1 else None) for s in range(stages))
        self.norm = nn.LayerNorm(dims[-1])
        # layers_up[0] is a bare expansion of the bottleneck; layers_up[i] works at encoder stage stages-1-i.
        self.layers_up = nn.ModuleList([PatchExpand(dims[-1], scale=2)])
        self.concat_back_dim = nn.ModuleList([nn.Identity()])
        for i in range(1, stages):
            s = stages - 1 - i
            self.layers_up.append(stage(s, "expand" if i < stages - 1 else None))
            self.concat_back_dim.append(nn.Linear(2 * dims[s], dims[s]))
        if skip_attention:
            self.skip_attention = nn.ModuleList(
                CrossContextAttention(
                    dims[s], skip_attention_depth, skip_attention_heads, skip_attention_dim_head, drop_rate
                )
                for s in range(stages - 1)
            )
        self.norm_up = nn.LayerNorm(embed_dim)
        self.up = PatchExpand(embed_dim, scale=patch_size, out_dim=embed_dim)
        self.output = nn.Conv2d(embed_dim, out_channels, kernel_size=1, bias=False)
        self.apply(_init_weights)

    def check_input(self, shape: tuple[int, ...]) -> None:
        """Raise :class:`~medswin.models.inputs.ModelInputError` unless ``shape`` (B, C, H, W) can run."""
        check_input_shape(
            shape, model="swin_unet", in_channels=self.in_channels, spatial_dims=2, multiple=self.multiple
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_tracing() and not torch.jit.is_scripting():
            self.check_input(tuple(x.shape))
        x = self.pos_drop(self.patch_embed(x))
        skips = []
        for stage in self.layers:
            skips.append(x)  # the first skip is the raw patch embedding, as in the original
            x = stage(x)
        x = self.norm(x)
        last = len(self.layers) - 1
        x = self.layers_up[0](x)
        for i in range(1, len(self.layers_up)):
            skip = skips[last - i]
            if i <= self.skip_attention_levels:
                x, skip = self.skip_attention[last - i](x, skip)
            x = self.concat_back_dim[i](torch.cat([x, skip], dim=-1))
            x = self.layers_up[i](x)
        x = self.up(self.norm_up(x))
        return self.output(x.permute(0, 3, 1, 2))


def _init_weights(module: nn.Module) -> None:
    # Swin initialisation: truncated normal (std 0.02) linear weights, zero biases, unit LayerNorms.
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
