"""Swin-Unet and Attention Swin U-Net: registry entries and key maps for their published checkpoints.

The networks are in :mod:`medswin.models.swin_unet_modules`. Our state_dict uses the official
Swin-Unet names except ``mlp.linear1/linear2`` (MONAI's Swin block) for ``mlp.fc1/fc2``, the
attention masks (computed at run time, not stored) and, for the attention variant,
``skip_attention.*`` for AttSwinUNet's ``decoder.Crossvit_layer.*``. The key maps below are the
one place where those differences are written down.

Key maps registered here:

* ``swin_unet_official``: a Swin-Unet trainer checkpoint (plain state_dict, keys prefixed
  ``swin_unet.`` or ``module.swin_unet.``).
* ``attention_swin_unet_official``: an AttSwinUNet trainer checkpoint
  (``{"model_weights": sd, "test_F1_score": f}``, keys ``encoder.*`` / ``decoder.*``).
* ``swin_unet_imagenet``: ImageNet Swin-T (Microsoft ``{"model": sd}`` file or timm layout) into
  the encoder, with encoder blocks mirrored into the decoder as Swin-Unet's ``load_from`` does.
  Partial by design: expansions, skip linears, ``norm_up`` and the head stay random.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from medswin.errors import ModelCardError
from medswin.models.key_maps import drop_keys, register_key_map, rename_keys, strip_prefixes
from medswin.models.registry import register_model

__all__ = [
    "SwinUnetConfig",
    "build_swin_unet",
    "swin_unet_official_map",
    "attention_swin_unet_official_map",
    "swin_unet_imagenet_map",
]


@dataclass(frozen=True)
class SwinUnetConfig:
    """Constructor arguments of :class:`medswin.models.swin_unet_modules.SwinUnet`.

    Defaults are Swin-Unet's published "tiny" configuration (configs/swin_tiny_patch4_window7_224_lite.yaml:
    img 224, patch 4, embed 96, depths 2,2,2,2, heads 3,6,12,24, window 7, drop-path 0.2).

    Attributes:
        in_channels: image channels (1 for CT slices; the official 3-channel weights are folded).
        out_channels: classes.
        img_size: construction image side in pixels (the training / inference ROI).
        patch_size / embed_dim / depths / num_heads / window_size / mlp_ratio / qkv_bias: Swin settings.
        drop_rate / attn_drop_rate / drop_path_rate: dropout and stochastic depth.
        patch_norm: LayerNorm after patch embedding.
        use_checkpoint: gradient checkpointing inside Swin blocks.
        skip_attention: cross-contextual attention in the skips (Attention Swin U-Net).
        skip_attention_levels: how many skips get it, counted from the bottleneck (paper: 3).
        skip_attention_depth / skip_attention_heads / skip_attention_dim_head: its size (2, 8, 64).
    """

    in_channels: int = 1
    out_channels: int = 9
    img_size: int = 224
    patch_size: int = 4
    embed_dim: int = 96
    depths: tuple[int, ...] = (2, 2, 2, 2)
    num_heads: tuple[int, ...] = (3, 6, 12, 24)
    window_size: int = 7
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    drop_rate: float = 0.0
    attn_drop_rate: float = 0.0
    drop_path_rate: float = 0.2
    patch_norm: bool = True
    use_checkpoint: bool = False
    skip_attention: bool = False
    skip_attention_levels: int = 3
    skip_attention_depth: int = 2
    skip_attention_heads: int = 8
    skip_attention_dim_head: int = 64


def build_swin_unet(config: SwinUnetConfig) -> Any:
    """The :class:`~medswin.models.swin_unet_modules.SwinUnet` for ``config`` (validated first)."""
    from medswin.models.swin_unet_modules import SwinUnet

    stages = len(config.depths)
    name = "attention_swin_unet" if config.skip_attention else "swin_unet"
    if len(config.num_heads) != stages or stages < 2:
        raise ModelCardError(
            f"{name}: depths {config.depths} and num_heads {config.num_heads} need the same length >= 2"
        )
    multiple = config.patch_size * 2 ** (stages - 1)
    if config.img_size % multiple:
        raise ModelCardError(
            f"{name}: img_size {config.img_size} must be divisible by patch_size*2**(stages-1) = {multiple}"
        )
    for s, heads in enumerate(config.num_heads):
        if (config.embed_dim * 2**s) % heads:
            raise ModelCardError(
                f"{name}: stage {s} has {config.embed_dim * 2**s} channels, not divisible by {heads} heads"
            )
    if not 0 <= config.skip_attention_levels <= stages - 1:
        raise ModelCardError(
            f"{name}: skip_attention_levels must be 0..{stages - 1}, got {config.skip_attention_levels}"
        )
    return SwinUnet(
        in_channels=config.in_channels,
        out_channels=config.out_channels,
        img_size=config.img_size,
        patch_size=config.patch_size,
        embed_dim=config.embed_dim,
        depths=tuple(config.depths),
        num_heads=tuple(config.num_heads),
        window_size=config.window_size,
        mlp_ratio=config.mlp_ratio,
        qkv_bias=config.qkv_bias,
        drop_rate=config.drop_rate,
        attn_drop_rate=config.attn_drop_rate,
        drop_path_rate=config.drop_path_rate,
        patch_norm=config.patch_norm,
        use_checkpoint=config.use_checkpoint,
        skip_attention=config.skip_attention,
        skip_attention_levels=config.skip_attention_levels,
        skip_attention_depth=config.skip_attention_depth,
        skip_attention_heads=config.skip_attention_heads,
        skip_attention_dim_head=config.skip_attention_dim_head,
    )


# ----------------------------------------------------------------------------------- key maps
#: official -> medswin renames shared by every Swin-Unet-family layout.
_MLP_RULES = ((r"\.mlp\.fc1\.", ".mlp.linear1."), (r"\.mlp\.fc2\.", ".mlp.linear2."))
#: buffers medswin recomputes (masks at run time; relative_position_index at construction).
_DERIVED = r"(attn_mask|relative_position_index)$"


def _fold_input_channels(state_dict: dict[str, Any], model: Any, notes: list[str]) -> dict[str, Any]:
    """Sum RGB patch-embedding weights for a 1-channel model (same output as repeating the gray channel)."""
    key = "patch_embed.proj.weight"
    weight = state_dict.get(key)
    target = model.state_dict().get(key)
    if weight is not None and target is not None and weight.shape[1] == 3 and target.shape[1] == 1:
        state_dict[key] = weight.sum(dim=1, keepdim=True)
        notes.append(
            "summed the 3 RGB patch-embedding input channels into 1 (equal to repeating a gray image)"
        )
    return state_dict


def swin_unet_official_map(state_dict: Mapping[str, Any], model: Any, notes: list[str]) -> dict[str, Any]:
    """Swin-Unet trainer checkpoint (HuCaoFighting/Swin-Unet) -> medswin ``swin_unet``."""
    sd = strip_prefixes(state_dict, ("module.", "swin_unet."))
    sd = drop_keys(sd, _DERIVED)
    sd = rename_keys(sd, _MLP_RULES)
    return _fold_input_channels(sd, model, notes)


def attention_swin_unet_official_map(
    state_dict: Mapping[str, Any], model: Any, notes: list[str]
) -> dict[str, Any]:
    """AttSwinUNet trainer checkpoint (NITR098/AttSwinUNet) -> medswin ``attention_swin_unet``.

    Drops the two tensors the released model builds but never uses: the top-level ``patch_embed``
    (built with 4 input channels) and ``decoder.norm``.
    """
    sd = strip_prefixes(state_dict, ("module.",))
    unused = [k for k in sd if k.startswith(("patch_embed.", "decoder.norm."))]
    if unused:
        notes.append(
            f"ignored {len(unused)} tensors the AttSwinUNet model never uses (patch_embed.*, decoder.norm.*)"
        )
    sd = {k: v for k, v in sd.items() if k not in unused}
    sd = drop_keys(sd, _DERIVED)
    sd = rename_keys(
        sd,
        (
            (r"^(encoder|decoder)\.", ""),
            (r"^Crossvit_layer\.", "skip_attention."),
            (r"\.fn\.fn\.to_out\.0\.", ".to_out."),
            (r"\.fn\.fn\.(to_q|to_kv)\.", r".\1."),
            (r"\.fn\.norm\.", ".norm."),
            *_MLP_RULES,
        ),
    )
    return _fold_input_channels(sd, model, notes)


def swin_unet_imagenet_map(state_dict: Mapping[str, Any], model: Any, notes: list[str]) -> dict[str, Any]:
    """ImageNet Swin-T (Microsoft or timm layout) -> Swin-Unet encoder + mirrored decoder blocks.

    Microsoft files put each stage's PatchMerging at the end of the stage (``layers.0.downsample``);
    timm puts it at the start of the next (``layers.1.downsample``), so timm indices shift down by
    one. Decoder stage ``layers_up.{S-1-s}`` starts from encoder stage ``s``'s blocks (for blocks the
    model has). Classifier and buffers are dropped; extra Swin-T blocks (stage 3 has 6) are left
    for the report as unexpected.
    """
    sd = dict(state_dict)
    timm_layout = (
        "layers.0.downsample.reduction.weight" not in sd and "layers.1.downsample.reduction.weight" in sd
    )
    if timm_layout:
        sd = rename_keys(
            sd, ((r"^layers\.(\d+)\.downsample\.", lambda m: f"layers.{int(m.group(1)) - 1}.downsample."),)
        )
        notes.append("timm layout: moved each stage-start downsample to the end of the previous stage")
    head = [k for k in sd if k.startswith("head.")]
    sd = {k: v for k, v in sd.items() if k not in head}
    if head:
        notes.append(f"dropped the ImageNet classifier ({len(head)} tensors)")
    sd = drop_keys(sd, _DERIVED)
    sd = rename_keys(sd, _MLP_RULES)
    sd = _fold_input_channels(sd, model, notes)

    model_keys = model.state_dict()
    stages = len(model.layers)
    mirrored = 0
    for key, value in list(sd.items()):
        parts = key.split(".", 3)  # layers, s, blocks, rest
        if len(parts) == 4 and parts[0] == "layers" and parts[2] == "blocks" and int(parts[1]) < stages - 1:
            target = f"layers_up.{stages - 1 - int(parts[1])}.blocks.{parts[3]}"
            if target in model_keys:
                sd[target] = value.clone()
                mirrored += 1
    notes.append(f"mirrored {mirrored} encoder block tensors into the decoder (Swin-Unet load_from rule)")
    return sd


register_model(
    "swin_unet",
    SwinUnetConfig,
    build_swin_unet,
    spatial_dims=2,
    description="Swin-Unet (Cao et al.): pure Swin 2D U-Net with patch expanding",
)
register_model(
    "attention_swin_unet",
    SwinUnetConfig,
    build_swin_unet,
    spatial_dims=2,
    description="Attention Swin U-Net (Aghdam et al.): Swin-Unet + cross-contextual skip attention",
    # configs/swin_attention_unet.py: depths 2,2,6,2, drop-path 0.1; RGB in, one lesion channel out.
    defaults={
        "skip_attention": True,
        "in_channels": 3,
        "out_channels": 1,
        "depths": (2, 2, 6, 2),
        "drop_path_rate": 0.1,
    },
)
register_key_map(
    "swin_unet_official",
    swin_unet_official_map,
    architectures=("swin_unet",),
    description="Swin-Unet trainer checkpoint (keys swin_unet.* / module.swin_unet.*)",
    default=True,
)
register_key_map(
    "attention_swin_unet_official",
    attention_swin_unet_official_map,
    architectures=("attention_swin_unet",),
    description="AttSwinUNet trainer checkpoint ({'model_weights': ...}, keys encoder.* / decoder.*)",
    default=True,
)
register_key_map(
    "swin_unet_imagenet",
    swin_unet_imagenet_map,
    architectures=("swin_unet", "attention_swin_unet"),
    description="ImageNet Swin-T (Microsoft {'model': ...} or timm) -> encoder + mirrored decoder",
    partial=True,
)
