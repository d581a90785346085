"""SwinUNETR (Hatamizadeh et al. 2022; He et al. 2023 for V2): a config + builder around MONAI's network.

The network itself is :class:`monai.networks.nets.SwinUNETR`; this module only adds

* a config dataclass mirroring its constructor (MONAI 1.6.1), so cards can store it as JSON;
* :class:`medswin.models.legacy_merging.LegacyPatchMerging`, the 3D patch merging of MONAI < 1.5.
  MONAI 1.5 (PR #8285) fixed the order of the eight 2×2×2 sub-grids without changing any shape, so every published
  SwinUNETR checkpoint (all trained before 1.5) loads silently into the new layer and computes a
  different function. Cards of published checkpoints set ``legacy_merging=True``;
* :class:`medswin.models.swin_unetr_net.CheckedSwinUNETR`: a clear error for a wrong channel count or a spatial size not divisible by ``patch_size**5``;
* key maps for the published files:

  - ``swin_unetr_research``: research-contributions BTCV / BraTS21 fine-tuned checkpoints
    (``{"epoch", "best_acc", "state_dict"}``, keys possibly prefixed ``module.``) and plain MONAI
    state_dicts such as the model-zoo bundle's ``model.pt``;
  - ``swin_unetr_ssl``: the self-supervised encoder ``model_swinvit.pt`` (``state_dict`` with
    ``module.`` keys, timm-style ``mlp.fc1/fc2``); fills ``swinViT`` only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from medswin.errors import ModelCardError
from medswin.models.key_maps import register_key_map, rename_keys, strip_prefixes
from medswin.models.registry import register_model

__all__ = [
    "SwinUNETRConfig",
    "build_swin_unetr",
    "swin_unetr_research_map",
    "swin_unetr_ssl_map",
]


@dataclass(frozen=True)
class SwinUNETRConfig:
    """Constructor arguments of :class:`monai.networks.nets.SwinUNETR` (MONAI 1.6.1) plus ``legacy_merging``.

    Attributes:
        in_channels: input channels (1 for CT, 4 for BraTS MRI).
        out_channels: output channels (labels for softmax, regions for sigmoid).
        feature_size: embedding size of stage 1; must be divisible by 12 (12 tiny, 24 small, 48 base).
        depths: Swin blocks per stage (4 stages).
        num_heads: attention heads per stage.
        patch_size: patch embedding stride; inputs must be divisible by ``patch_size**5``.
        window_size: attention window (voxels on each stage's grid).
        spatial_dims: 2 or 3.
        use_v2: SwinUNETR-V2 (residual conv block before each Swin stage).
        use_checkpoint: gradient checkpointing (memory for speed; no effect on weights or outputs).
        patch_norm: LayerNorm after patch embedding (MONAI < 1.5 default was True, now False).
        drop_rate / attn_drop_rate / dropout_path_rate: dropout rates in [0, 1].
        normalize: layer-norm each encoder hidden state before the decoder.
        qkv_bias / mlp_ratio / norm_name: as in MONAI.
        legacy_merging: use the pre-1.5 3D patch merging order (published checkpoints need it).
        use_flash_attention: MONAI 1.6 SDPA path, used only without autograd (~25% faster on CPU).
    """

    in_channels: int = 1
    out_channels: int = 2
    feature_size: int = 24
    depths: tuple[int, ...] = (2, 2, 2, 2)
    num_heads: tuple[int, ...] = (3, 6, 12, 24)
    patch_size: int = 2
    window_size: int | tuple[int, ...] = 7
    spatial_dims: int = 3
    use_v2: bool = False
    use_checkpoint: bool = False
    patch_norm: bool = False
    drop_rate: float = 0.0
    attn_drop_rate: float = 0.0
    dropout_path_rate: float = 0.0
    normalize: bool = True
    qkv_bias: bool = True
    mlp_ratio: float = 4.0
    norm_name: str | tuple[Any, ...] = "instance"
    legacy_merging: bool = False
    use_flash_attention: bool = False


def _as_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, Sequence) and not isinstance(value, str) else value


def build_swin_unetr(config: SwinUNETRConfig) -> Any:
    """A ``monai.networks.nets.SwinUNETR`` for ``config`` that checks its input shape in ``forward``.

    Input ``(B, in_channels, H, W[, D])`` with every spatial size divisible by ``patch_size**5``;
    output logits ``(B, out_channels, H, W[, D])``.
    """
    from medswin.models.legacy_merging import LegacyPatchMerging
    from medswin.models.swin_unetr_net import CheckedSwinUNETR

    if config.spatial_dims not in (2, 3):
        raise ModelCardError(f"swin_unetr: spatial_dims must be 2 or 3, got {config.spatial_dims}")
    if config.feature_size % 12:
        raise ModelCardError(
            f"swin_unetr: feature_size must be divisible by 12 (12, 24, 48 ...), got {config.feature_size}"
        )
    if len(config.depths) != 4 or len(config.num_heads) != 4:
        raise ModelCardError(
            f"swin_unetr: depths and num_heads need 4 entries (one per stage), got {config.depths}, {config.num_heads}"
        )
    # InstanceNorm in the bottleneck block cannot normalise a single voxel.
    norm = config.norm_name if isinstance(config.norm_name, str) else config.norm_name[0]
    instance_norm = str(norm).lower() == "instance"

    downsample: Any = LegacyPatchMerging if config.legacy_merging else "merging"
    try:
        net = CheckedSwinUNETR(
            min_bottleneck_voxels=2 if instance_norm else 1,
            in_channels=config.in_channels,
            out_channels=config.out_channels,
            patch_size=config.patch_size,
            depths=_as_tuple(config.depths),
            num_heads=_as_tuple(config.num_heads),
            window_size=_as_tuple(config.window_size),
            qkv_bias=config.qkv_bias,
            mlp_ratio=config.mlp_ratio,
            feature_size=config.feature_size,
            norm_name=_as_tuple(config.norm_name),
            drop_rate=config.drop_rate,
            attn_drop_rate=config.attn_drop_rate,
            dropout_path_rate=config.dropout_path_rate,
            normalize=config.normalize,
            patch_norm=config.patch_norm,
            use_checkpoint=config.use_checkpoint,
            spatial_dims=config.spatial_dims,
            downsample=downsample,
            use_v2=config.use_v2,
            use_flash_attention=config.use_flash_attention,
        )
    except ValueError as error:
        raise ModelCardError(f"swin_unetr: invalid configuration: {error}") from None
    return net


register_model(
    "swin_unetr",
    SwinUNETRConfig,
    build_swin_unetr,
    spatial_dims=3,
    description="SwinUNETR (MONAI): Swin encoder + CNN decoder, 2D/3D",
    patch_merging="monai",
)
register_model(
    "swin_unetr_v2",
    SwinUNETRConfig,
    build_swin_unetr,
    spatial_dims=3,
    description="SwinUNETR-V2 (MONAI use_v2): residual conv before each Swin stage",
    defaults={"use_v2": True},
    patch_merging="monai",
)


# ----------------------------------------------------------------------------------- key maps
_PATCH_NORM_KEY = "swinViT.patch_embed.norm.weight"


def _note_merging(model: Any, notes: list[str]) -> None:
    """Every published SwinUNETR file was trained with the pre-1.5 merging; say so if the model lacks it."""
    from medswin.models.legacy_merging import LegacyPatchMerging

    stage = getattr(getattr(model, "swinViT", None), "layers1", None)
    if stage is not None and not isinstance(stage[0].downsample, LegacyPatchMerging):
        notes.append(
            "this model uses MONAI >= 1.5 patch merging; published SwinUNETR weights were trained with the "
            "pre-1.5 order, so set config legacy_merging: true to reproduce them"
        )


def swin_unetr_research_map(state_dict: Mapping[str, Any], model: Any, notes: list[str]) -> dict[str, Any]:
    """research-contributions / MONAI SwinUNETR state_dict -> medswin ``swin_unetr`` (names are MONAI's).

    Only DDP / trainer prefixes differ (``module.``, ``backbone.``).
    """
    sd = strip_prefixes(state_dict, ("module.", "backbone."))
    if _PATCH_NORM_KEY in sd and _PATCH_NORM_KEY not in model.state_dict():
        notes.append(
            "the file has swinViT.patch_embed.norm (trained with patch_norm=True, MONAI 1.3-1.4 default); set config patch_norm: true"
        )
    return sd


def swin_unetr_ssl_map(state_dict: Mapping[str, Any], model: Any, notes: list[str]) -> dict[str, Any]:
    """Self-supervised Swin encoder (``model_swinvit.pt``) -> ``swinViT.*`` of a SwinUNETR.

    Same tensors MONAI's ``SwinUNETR.load_from`` copies: patch embedding, every block (timm
    ``mlp.fc1/fc2`` -> MONAI ``mlp.linear1/linear2``) and each stage's patch merging. Keys that are
    not part of the Swin encoder are left as they are (reported as unexpected).
    """
    sd = strip_prefixes(state_dict, ("module.",))
    sd = rename_keys(sd, ((r"^swin_vit\.", "swinViT."),))
    encoder = re.compile(r"^(patch_embed\.|layers[1-4]\.)")
    sd = {("swinViT." + k if encoder.match(k) else k): v for k, v in sd.items()}
    sd = rename_keys(sd, ((r"\.mlp\.fc1\.", ".mlp.linear1."), (r"\.mlp\.fc2\.", ".mlp.linear2.")))
    notes.append(
        "self-supervised weights cover the Swin encoder (swinViT) only; CNN encoders, decoders and head keep their initial values"
    )
    weight = sd.get("swinViT.patch_embed.proj.weight")
    target = model.state_dict().get("swinViT.patch_embed.proj.weight")
    if weight is not None and target is not None and weight.shape[1] != target.shape[1]:
        notes.append(
            f"the file's patch embedding takes {weight.shape[1]} channel(s); this model has {target.shape[1]}"
        )
    _note_merging(model, notes)
    return sd


register_key_map(
    "swin_unetr_research",
    swin_unetr_research_map,
    architectures=("swin_unetr", "swin_unetr_v2"),
    description="research-contributions BTCV/BraTS21 checkpoints ({'state_dict', 'epoch', 'best_acc'}) or plain MONAI state_dicts",
    default=True,
)
register_key_map(
    "swin_unetr_ssl",
    swin_unetr_ssl_map,
    architectures=("swin_unetr", "swin_unetr_v2"),
    description="self-supervised encoder model_swinvit.pt (module.* keys, fc1/fc2) -> swinViT only",
    partial=True,
)
