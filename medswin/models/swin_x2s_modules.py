"""Network code of Swin-X2S (Liu et al., arXiv 2501.05961): two radiographs in, a 3D label volume out.

Independent implementation from the paper and the published key layout (liukuan5625/Swin-X2S).
One 2D Swin Transformer encodes both views with shared weights; :class:`DepthExpand` lifts each
scale's 2D map to 3D by repeating it along the projection axis with a learnt scale and bias per
depth slice; MONAI's UNETR blocks (shared by both views) encode and decode the volumes;
:class:`CrossViewAttention` exchanges information between the two views at the bottleneck only.

Volume axes ``(X, Y, Z)`` of the output, and of the training labels: X runs from the patient's
right to left, Y from anterior to posterior, Z from head to feet (orientation code ``"LPI"``).
The AP (coronal) view is the projection along Y, an image ``(X, Z)``; the lateral (sagittal) view
the projection along X, an image ``(Y, Z)``. See :mod:`medswin.transforms.drr`.

The Swin blocks, window helpers and 2D patch merging are MONAI's, so our state_dict differs from
the official one only in ``mlp.linear1/linear2`` (official ``mlp.fc1/fc2``) and in the attention
masks, which we compute at run time instead of storing; ``medswin.models.swin_x2s`` holds the key
map that converts official checkpoints.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.networks.blocks import UnetOutBlock, UnetrBasicBlock, UnetrUpBlock
from monai.networks.nets.swin_unetr import PatchMergingV2, SwinTransformerBlock
from torch import nn

from medswin.models.inputs import ModelInputError, check_input_shape
from medswin.models.swin_unet_modules import PatchEmbed2d, run_swin_blocks

__all__ = [
    "XrayStage",
    "XraySwinEncoder",
    "DepthExpand",
    "CrossViewAttention",
    "SwinX2SNet",
    "stage_windows",
]

#: number of 2x downsamplings between a view and the bottleneck (patch embedding + 4 merges).
DOWNSAMPLINGS = 5


def stage_windows(
    resolution: Sequence[int], window_size: Sequence[int]
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Window and shift of a stage's blocks as the official Swin-X2S builds them.

    If the stage's smaller side is at most the smaller window side, one window covers the whole
    grid and nothing is shifted (then the relative-position table has the grid's shape, e.g.
    ``(2*6-1)*(2*8-1)`` rows for a 6×8 grid). Otherwise the window is used as given and odd
    blocks shift by half a window.

    Returns:
        ``(window, shift)`` for the odd (shifted) blocks; even blocks use the same window, shift 0.
    """
    h, w = (int(r) for r in resolution)
    if min(h, w) <= min(window_size):
        return (h, w), (0, 0)
    return (int(window_size[0]), int(window_size[1])), (int(window_size[0]) // 2, int(window_size[1]) // 2)


class XrayStage(nn.Module):
    """One Swin stage of the X-ray encoder: blocks, 2×2 patch merging, side-output LayerNorm.

    Args:
        dim: channels C of the stage's tokens.
        depth: Swin blocks (W-MSA on even, SW-MSA on odd indices).
        num_heads: attention heads.
        window_size: attention window ``(Wh, Ww)`` in tokens.
        resolution: the stage's token grid ``(H, W)`` at the model's construction size.
        drop_path: stochastic-depth rate of each block (``depth`` values).
        use_checkpoint: gradient checkpointing inside the blocks.
        use_flash_attention: MONAI's SDPA window attention (used only without autograd).

    ``forward(x)``: ``(B, H, W, C)`` -> ``(merged, side)``, both ``(B, H/2, W/2, 2C)``; ``merged``
    feeds the next stage, ``side = norm(merged)`` is this stage's skip feature.
    """

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        window_size: Sequence[int],
        resolution: Sequence[int],
        drop_path: Sequence[float],
        use_checkpoint: bool = False,
        use_flash_attention: bool = False,
    ) -> None:
        super().__init__()
        window, shift = stage_windows(resolution, window_size)
        self.blocks = nn.ModuleList(
            SwinTransformerBlock(
                dim=dim,
                num_heads=num_heads,
                window_size=window,
                shift_size=(0, 0) if i % 2 == 0 else shift,
                mlp_ratio=4.0,
                qkv_bias=True,
                drop_path=float(drop_path[i]),
                use_checkpoint=use_checkpoint,
                use_flash_attention=use_flash_attention,
            )
            for i in range(depth)
        )
        self.norm = nn.LayerNorm(2 * dim)
        self.downsample = PatchMergingV2(dim, spatial_dims=2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        merged = self.downsample(run_swin_blocks(self.blocks, x))
        return merged, self.norm(merged)


class XraySwinEncoder(nn.Module):
    """The 2D Swin Transformer shared by both views (official ``swinViT``).

    Args:
        in_channels: DRRs per view (1: one radiograph each).
        embed_dim: channels C after patch embedding (the model's feature size).
        depths / num_heads: blocks and heads of the four stages.
        window_size: ``(Wh, Ww)``.
        image_size: ``(H, W)`` of each view in pixels.
        patch_size: patch embedding stride (2 in Swin-X2S).
        drop_path_rate: largest stochastic-depth rate, reached linearly at the last block.
        use_checkpoint / use_flash_attention: see :class:`XrayStage`.

    ``forward(x)``: ``(B, in_channels, H, W)`` -> five channel-last side outputs
    ``(B, H/2**(k+1), W/2**(k+1), C*2**k)`` for k = 0..4: the normed patch embedding, then each
    stage's normed merged tokens (every stage merges, including the last).
    """

    def __init__(
        self,
        in_channels: int,
        embed_dim: int,
        depths: Sequence[int],
        num_heads: Sequence[int],
        window_size: Sequence[int],
        image_size: Sequence[int],
        patch_size: int = 2,
        drop_path_rate: float = 0.2,
        use_checkpoint: bool = False,
        use_flash_attention: bool = False,
    ) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed2d(in_channels, embed_dim, patch_size, patch_norm=True)
        rates = torch.linspace(0, drop_path_rate, sum(depths), device="cpu").tolist()
        grid = [int(image_size[0]) // patch_size, int(image_size[1]) // patch_size]
        self.layers = nn.ModuleList()
        for i, (depth, heads) in enumerate(zip(depths, num_heads, strict=True)):
            start = sum(depths[:i])
            self.layers.append(
                XrayStage(
                    dim=embed_dim * 2**i,
                    depth=depth,
                    num_heads=heads,
                    window_size=window_size,
                    resolution=(grid[0] // 2**i, grid[1] // 2**i),
                    drop_path=rates[start : start + depth],
                    use_checkpoint=use_checkpoint,
                    use_flash_attention=use_flash_attention,
                )
            )
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.patch_embed(x)
        sides = [self.norm(x)]
        for stage in self.layers:
            x, side = stage(x)
            sides.append(side)
        return sides


class DepthExpand(nn.Module):
    """Lift a 2D feature map to 3D: repeat it ``depth`` times along the projection axis.

    Slice ``d`` of the new axis is ``weight[d] * feature + bias[d]`` (one scale and bias per slice,
    shared by all channels). Parameters have the shapes of the official ``nn.Conv3d(1, depth, 1)``,
    which computes the same thing; starts as a plain repetition (weight 1, bias 0).

    Args:
        depth: voxels along the new axis.

    ``forward(x, axis)``: channel-last ``(B, H, W, C)`` -> ``(B, C, depth, H, W)`` for ``axis=0``
    (lateral view: the new axis is volume X) or ``(B, C, H, depth, W)`` for ``axis=1`` (AP view:
    the new axis is volume Y).
    """

    def __init__(self, depth: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(depth, 1, 1, 1, 1))
        self.bias = nn.Parameter(torch.zeros(depth))

    def forward(self, x: torch.Tensor, axis: int) -> torch.Tensor:
        feature = x.permute(0, 3, 1, 2)  # (B, C, H, W)
        depth = self.bias.shape[0]
        if axis == 0:
            shape, feature = (1, 1, depth, 1, 1), feature.unsqueeze(2)
        elif axis == 1:
            shape, feature = (1, 1, 1, depth, 1), feature.unsqueeze(3)
        else:
            raise ValueError(f"DepthExpand: axis must be 0 (lateral view) or 1 (AP view), got {axis}")
        return torch.addcmul(self.bias.view(shape), feature, self.weight.view(shape))

    def extra_repr(self) -> str:
        return f"depth={self.bias.shape[0]}"


class _CrossAttention(nn.Module):
    """Multi-head attention of one view's tokens onto the other's, both directions, shared weights."""

    def __init__(self, hidden_size: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = num_heads
        self.query = nn.Linear(hidden_size, hidden_size)
        self.key = nn.Linear(hidden_size, hidden_size)
        self.value = nn.Linear(hidden_size, hidden_size)
        self.out = nn.Linear(hidden_size, hidden_size)
        self.dropout = dropout

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        return x.view(b, n, self.heads, c // self.heads).transpose(1, 2)

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        p = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        b, _, n, _ = out.shape
        return F.dropout(self.out(out.transpose(1, 2).reshape(b, n, -1)), p, self.training)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        qa, ka, va = (self._split(f(a)) for f in (self.query, self.key, self.value))
        qb, kb, vb = (self._split(f(b)) for f in (self.query, self.key, self.value))
        return self._attend(qa, kb, vb), self._attend(qb, ka, va)


class _CrossAttentionLayer(nn.Module):
    """LayerNorm (shared by both views), then bidirectional cross-attention; no residual, no MLP."""

    def __init__(self, hidden_size: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.attention_norm = nn.LayerNorm(hidden_size, eps=1e-6)
        self.attn = _CrossAttention(hidden_size, num_heads, dropout)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.attn(self.attention_norm(a), self.attention_norm(b))


class CrossViewAttention(nn.Module):
    """Fuse the two views' bottleneck volumes by cross-attention (official ``TransFusion``).

    Each view's ``(B, C, x, y, z)`` bottleneck becomes ``x*y*z`` tokens (row-major over x, y, z)
    after a shared 1×1×1 convolution, gets the shared learnt position embedding, then passes
    ``depth`` layers in which the AP tokens attend to the lateral tokens and vice versa. The
    released model replaces (does not add to) the tokens at every layer; we do the same.

    Args:
        hidden_size: channels C (16 × feature size).
        grid: bottleneck grid ``(x, y, z)`` (the volume size / 32).
        depth: cross-attention layers (1 in every released configuration).
        num_heads: heads (the last Swin stage's head count, giving 64 channels per head).
        drop_rate: dropout after the position embedding.
        attn_drop_rate: dropout on attention weights and outputs.

    ``forward(a, b)``: two ``(B, C, x, y, z)`` tensors -> the fused pair, same shapes.
    """

    def __init__(
        self,
        hidden_size: int,
        grid: Sequence[int],
        depth: int,
        num_heads: int,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.grid = tuple(int(g) for g in grid)
        tokens = self.grid[0] * self.grid[1] * self.grid[2]
        self.patch_embeddings = nn.Conv3d(hidden_size, hidden_size, kernel_size=1)
        self.position_embeddings = nn.Parameter(torch.zeros(1, tokens, hidden_size))
        self.dropout = nn.Dropout(drop_rate)
        self.layer = nn.ModuleList(
            _CrossAttentionLayer(hidden_size, num_heads, attn_drop_rate) for _ in range(depth)
        )
        self.encoder_norm = nn.LayerNorm(hidden_size, eps=1e-6)

    def _tokens(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embeddings(x).flatten(2).transpose(1, 2)
        return self.dropout(x + self.position_embeddings)

    def _volume(self, x: torch.Tensor) -> torch.Tensor:
        b, _, c = x.shape
        return self.encoder_norm(x).transpose(1, 2).reshape(b, c, *self.grid)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = self._tokens(a), self._tokens(b)
        for layer in self.layer:
            a, b = layer(a, b)
        return self._volume(a), self._volume(b)


class SwinX2SNet(nn.Module):
    """Swin-X2S: biplanar radiographs -> two 3D logit volumes (one per view's decoder pass).

    Attribute names follow the official model (``swinViT``, ``expand_``, ``encoder1..5``,
    ``encoder10``, ``cross_atte6``, ``decoder5..1``, ``out``) so checkpoints map one to one.

    Args:
        img_size: output volume ``(X, Y, Z)`` in voxels; each view is ``(X, Z)`` (AP) or
            ``(Y, Z)`` (lateral) pixels, so ``X == Y`` is required; every size divisible by 32.
        in_channels: images per view (1 for one radiograph; more for several DRR angles).
        out_channels: label classes including background.
        feature_size: Swin embedding size C (32 tiny, 64 small, 96 base, 128 large).
        depths / num_heads: the four Swin stages.
        window_size: Swin window ``(Wh, Ww)`` in tokens (7, 7).
        fusion_depth: cross-attention layers at the bottleneck (1).
        norm_name: normalisation of the 3D blocks (MONAI name, "instance").
        drop_rate / attn_drop_rate: dropout in the cross-attention (the Swin blocks use none).
        drop_path_rate: Swin stochastic depth (0.2).
        use_checkpoint: gradient checkpointing in the Swin blocks.
        use_flash_attention: MONAI SDPA window attention without autograd.

    ``forward(ap, lateral)``: two ``(B, in_channels, X, Z)`` tensors with values in [0, 1] ->
    ``(logits_ap, logits_lateral)``, each ``(B, out_channels, X, Y, Z)``. Predict with the argmax
    of their sum (:func:`medswin.models.swin_x2s.fuse_view_logits`).
    """

    def __init__(
        self,
        img_size: Sequence[int],
        in_channels: int,
        out_channels: int,
        feature_size: int = 96,
        depths: Sequence[int] = (2, 2, 18, 2),
        num_heads: Sequence[int] = (3, 6, 12, 24),
        window_size: Sequence[int] = (7, 7),
        fusion_depth: int = 1,
        norm_name: str | tuple = "instance",
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.2,
        use_checkpoint: bool = False,
        use_flash_attention: bool = False,
    ) -> None:
        super().__init__()
        self.img_size = tuple(int(s) for s in img_size)
        self.in_channels = in_channels
        c = feature_size

        def encoder(channels_in: int, channels_out: int) -> UnetrBasicBlock:
            return UnetrBasicBlock(3, channels_in, channels_out, 3, 1, norm_name, res_block=True)

        def decoder(channels_in: int, channels_out: int) -> UnetrUpBlock:
            return UnetrUpBlock(3, channels_in, channels_out, 3, 2, norm_name, res_block=True)

        self.encoder1 = encoder(in_channels, c)
        self.encoder2 = encoder(c, c)
        self.encoder3 = encoder(2 * c, 2 * c)
        self.encoder4 = encoder(4 * c, 4 * c)
        self.encoder5 = encoder(8 * c, 8 * c)
        self.encoder10 = encoder(16 * c, 16 * c)
        self.decoder5 = decoder(16 * c, 8 * c)
        self.decoder4 = decoder(8 * c, 4 * c)
        self.decoder3 = decoder(4 * c, 2 * c)
        self.decoder2 = decoder(2 * c, c)
        self.decoder1 = decoder(c, c)
        self.out = UnetOutBlock(3, c, out_channels)
        self.cross_atte6 = CrossViewAttention(
            hidden_size=16 * c,
            grid=[s // 2**DOWNSAMPLINGS for s in self.img_size],
            depth=fusion_depth,
            num_heads=num_heads[-1],
            drop_rate=drop_rate,
            attn_drop_rate=attn_drop_rate,
        )
        self.swinViT = XraySwinEncoder(
            in_channels,
            c,
            depths,
            num_heads,
            window_size,
            image_size=self.img_size[1:],
            patch_size=2,
            drop_path_rate=drop_path_rate,
            use_checkpoint=use_checkpoint,
            use_flash_attention=use_flash_attention,
        )
        # level 0 is the image itself, levels 1..5 the Swin side outputs
        self.expand_ = nn.ModuleList(DepthExpand(self.img_size[0] // 2**i) for i in range(DOWNSAMPLINGS + 1))
        self.encoders = (
            self.encoder1,
            self.encoder2,
            self.encoder3,
            self.encoder4,
            self.encoder5,
            self.encoder10,
        )

    def view_shape(self) -> tuple[int, int]:
        """Pixel size ``(rows, columns)`` each view must have: ``(X, Z)`` = ``(Y, Z)``."""
        return self.img_size[1], self.img_size[2]

    def encode_view(self, image: torch.Tensor, axis: int) -> list[torch.Tensor]:
        """One view -> six 3D feature volumes, finest first (the last is the bottleneck).

        ``axis`` is the volume axis the view projects along: 1 for AP, 0 for lateral.
        """
        levels = [image.permute(0, 2, 3, 1), *self.swinViT(image)]
        return [
            enc(expand(f, axis)) for enc, expand, f in zip(self.encoders, self.expand_, levels, strict=True)
        ]

    def decode(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """Six feature volumes (finest first) -> ``(B, out_channels, X, Y, Z)`` logits."""
        enc0, enc1, enc2, enc3, enc4, bottleneck = features
        x = self.decoder5(bottleneck, enc4)
        x = self.decoder4(x, enc3)
        x = self.decoder3(x, enc2)
        x = self.decoder2(x, enc1)
        return self.out(self.decoder1(x, enc0))

    def forward(self, ap: torch.Tensor, lateral: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for name, view in (("ap", ap), ("lateral", lateral)):
            check_input_shape(
                view.shape,
                model=f"swin_x2s ({name} view)",
                in_channels=self.in_channels,
                spatial_dims=2,
                exact=self.view_shape(),
            )
        if ap.shape[0] != lateral.shape[0]:
            raise ModelInputError(
                f"swin_x2s: the AP batch has {ap.shape[0]} image(s) but the lateral batch {lateral.shape[0]}; "
                "pass one lateral radiograph per AP radiograph"
            )
        features_ap = self.encode_view(ap, axis=1)
        features_lat = self.encode_view(lateral, axis=0)
        features_ap[-1], features_lat[-1] = self.cross_atte6(features_ap[-1], features_lat[-1])
        return self.decode(features_ap), self.decode(features_lat)
