"""Swin-X2S (Liu et al., arXiv 2501.05961): 3D segmentation from a pair of biplanar radiographs.

Registers ``swin_x2s`` and the published variants ``swin_x2s_tiny/small/base/large`` (network in
:mod:`medswin.models.swin_x2s_modules`), the key maps for the official files, the training loss
and the inference rule. Importing this module does not import torch.

Config names are the official constructor's (``img_size``, ``in_channels``, ``out_channels``,
``feature_size``, ``depths``, ``num_heads``, ``norm_name``, ``drop_rate``, ``attn_drop_rate``,
``spatial_dims``, ``fusion_depths``, ``window_size``), so
``create_model("swin_x2s_base", img_size=(128, 128, 160), in_channels=1, out_channels=55)``
builds the network the official TotalSegmentator-all checkpoints were trained as.

Key maps registered here:

* ``swin_x2s_official``: a Swin-X2S trainer checkpoint (``{"epoch", "best_acc", "state_dict",
  "optimizer", "scheduler"}`` or a bare state_dict, keys possibly prefixed ``module.``). Renames
  ``mlp.fc1/fc2`` to MONAI's ``mlp.linear1/linear2`` and drops the stored shifted-window masks.
* ``swin_x2s_imagenet``: the Microsoft ImageNet Swin file the official Base runs start from
  (``swin_small_patch4_window7_224_22k.pth``, ``{"model": ...}``) into ``swinViT`` only, adapted
  the way the official ``main.py --use_ssl_pretrained`` does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from medswin.errors import ModelCardError
from medswin.models.key_maps import drop_keys, register_key_map, rename_keys, strip_prefixes
from medswin.models.registry import register_model

__all__ = [
    "SwinX2SConfig",
    "SWIN_X2S_VARIANTS",
    "SWIN_X2S_PARAMETERS",
    "build_swin_x2s",
    "swin_x2s_official_map",
    "swin_x2s_imagenet_map",
    "swin_x2s_loss",
    "fuse_view_logits",
    "predict_labels",
]

#: the published variants (models/get_model.py): feature size, depths, heads.
SWIN_X2S_VARIANTS: dict[str, dict[str, Any]] = {
    "tiny": {"feature_size": 32, "depths": (2, 2, 6, 2), "num_heads": (1, 2, 4, 8)},
    "small": {"feature_size": 64, "depths": (2, 2, 6, 2), "num_heads": (2, 4, 8, 16)},
    "base": {"feature_size": 96, "depths": (2, 2, 18, 2), "num_heads": (3, 6, 12, 24)},
    "large": {"feature_size": 128, "depths": (2, 2, 18, 2), "num_heads": (4, 8, 16, 32)},
}

#: learnable parameters of the official models at img_size (128, 128, 160), 1 channel, 55 classes.
SWIN_X2S_PARAMETERS: dict[str, int] = {
    "tiny": 32_557_901,
    "small": 130_067_563,
    "base": 313_847_449,
    "large": 557_804_903,
}

#: how many times the network halves each size (patch embedding + four merges).
_MULTIPLE = 32


@dataclass(frozen=True)
class SwinX2SConfig:
    """Constructor arguments of Swin-X2S, with the official names; defaults are Swin-X2S-Base on TotalSeg-all.

    Attributes:
        img_size: output volume ``(X, Y, Z)`` in voxels (official ROI ``(roi_x, roi_y, roi_z)``);
            each view is ``(X, Z)`` pixels. ``X == Y``; every size divisible by 32.
        in_channels: images per view (1; n > 1 stacks n DRR angles per view).
        out_channels: classes including background (55 TotalSeg-all, 26 spine, 4 pelvis, 3 femur, 25 rib).
        feature_size: Swin embedding size (32 / 64 / 96 / 128 for tiny / small / base / large).
        depths / num_heads: the four Swin stages.
        norm_name: normalisation of the 3D UNETR blocks.
        drop_rate / attn_drop_rate: dropout inside the cross-view attention only.
        spatial_dims: must be 3 (kept because the official constructor takes it).
        fusion_depths: cross-attention layers per level; only the bottleneck (last) entry is used.
        window_size: Swin window ``(Wh, Ww)`` (official configs: (7, 7)).
        drop_path_rate: Swin stochastic depth, fixed to 0.2 in the official code.
        use_checkpoint: gradient checkpointing in the Swin blocks (memory for time).
        use_flash_attention: MONAI's SDPA window attention, used only without autograd.
    """

    img_size: tuple[int, int, int] = (128, 128, 160)
    in_channels: int = 1
    out_channels: int = 55
    feature_size: int = 96
    depths: tuple[int, ...] = (2, 2, 18, 2)
    num_heads: tuple[int, ...] = (3, 6, 12, 24)
    norm_name: str | tuple[Any, ...] = "instance"
    drop_rate: float = 0.0
    attn_drop_rate: float = 0.0
    spatial_dims: int = 3
    fusion_depths: tuple[int, ...] = (1, 1, 1, 1, 1, 1)
    window_size: int | tuple[int, int] = (7, 7)
    drop_path_rate: float = 0.2
    use_checkpoint: bool = False
    use_flash_attention: bool = False


def _as_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, Sequence) and not isinstance(value, str) else value


def _check_config(config: SwinX2SConfig) -> tuple[tuple[int, ...], tuple[int, int]]:
    """Validated ``(img_size, window_size)``; raises :class:`ModelCardError` naming the bad option."""
    if config.spatial_dims != 3:
        raise ModelCardError(
            f"swin_x2s: spatial_dims must be 3 (the output is a volume), got {config.spatial_dims}"
        )
    size = tuple(int(s) for s in _as_tuple(config.img_size)) if isinstance(config.img_size, Sequence) else ()
    if len(size) != 3:
        raise ModelCardError(f"swin_x2s: img_size must be (X, Y, Z), got {config.img_size!r}")
    if size[0] != size[1]:
        raise ModelCardError(
            f"swin_x2s: img_size {size} needs X == Y (both views are (X, Z) images and share the encoder)"
        )
    if any(s % _MULTIPLE or s <= 0 for s in size):
        raise ModelCardError(
            f"swin_x2s: every img_size must be a positive multiple of {_MULTIPLE}, got {size}"
        )
    window = config.window_size
    window = (int(window), int(window)) if isinstance(window, int) else tuple(int(w) for w in window)
    if len(window) != 2 or min(window) < 1:
        raise ModelCardError(f"swin_x2s: window_size must be (Wh, Ww), got {config.window_size!r}")
    if len(config.depths) != 4 or len(config.num_heads) != 4:
        raise ModelCardError(
            f"swin_x2s: depths and num_heads need 4 entries, got {tuple(config.depths)}, {tuple(config.num_heads)}"
        )
    for stage, heads in enumerate(config.num_heads):
        if (config.feature_size * 2**stage) % heads:
            raise ModelCardError(
                f"swin_x2s: stage {stage} has {config.feature_size * 2**stage} channels, not divisible by {heads} heads"
            )
    if (16 * config.feature_size) % config.num_heads[-1]:
        raise ModelCardError(
            f"swin_x2s: bottleneck width {16 * config.feature_size} not divisible by {config.num_heads[-1]} heads"
        )
    if not config.fusion_depths or int(config.fusion_depths[-1]) < 0:
        raise ModelCardError(
            f"swin_x2s: fusion_depths must end with a layer count >= 0, got {config.fusion_depths!r}"
        )
    return size, window


def build_swin_x2s(config: SwinX2SConfig) -> Any:
    """The :class:`~medswin.models.swin_x2s_modules.SwinX2SNet` for ``config`` (validated first)."""
    from medswin.models.swin_x2s_modules import SwinX2SNet

    size, window = _check_config(config)
    return SwinX2SNet(
        img_size=size,
        in_channels=config.in_channels,
        out_channels=config.out_channels,
        feature_size=config.feature_size,
        depths=tuple(config.depths),
        num_heads=tuple(config.num_heads),
        window_size=window,
        fusion_depth=int(config.fusion_depths[-1]),
        norm_name=_as_tuple(config.norm_name),
        drop_rate=config.drop_rate,
        attn_drop_rate=config.attn_drop_rate,
        drop_path_rate=config.drop_path_rate,
        use_checkpoint=config.use_checkpoint,
        use_flash_attention=config.use_flash_attention,
    )


# ----------------------------------------------------------------------------- loss and inference
def swin_x2s_loss(logits_ap: Any, logits_lateral: Any, target: Any, mutual_weight: float = 1.0) -> Any:
    """The official training loss: per-view Dice+CE plus mutual KL between the views, averaged over views.

    ``loss = 1/2 * sum_i [DiceCE(out_i, y) + mutual_weight * KL(softmax(out_j) || softmax(out_i))]``
    with MONAI ``DiceCELoss(to_onehot_y=True, softmax=True)`` (background included) and
    ``KLDivLoss(reduction="mean")`` on ``(log_softmax(out_i), softmax(out_j))``: an element mean,
    neither side detached, so each branch learns from the other (deep mutual learning).

    Args:
        logits_ap / logits_lateral: ``(B, K, X, Y, Z)`` logits of the two branches.
        target: ``(B, 1, X, Y, Z)`` integer labels.
        mutual_weight: factor of the KL term (1 in the official training).

    Returns:
        A scalar tensor.
    """
    import torch.nn.functional as F
    from monai.losses import DiceCELoss

    segmentation = DiceCELoss(to_onehot_y=True, softmax=True)
    outputs = (logits_ap, logits_lateral)
    total = 0.0
    for i, out in enumerate(outputs):
        other = outputs[1 - i]
        log_p, log_q = F.log_softmax(other, dim=1), F.log_softmax(out, dim=1)
        mutual = (log_p.exp() * (log_p - log_q)).mean()  # = F.kl_div(log_q, p, reduction="mean")
        total = total + (segmentation(out, target) + mutual_weight * mutual) / len(outputs)
    return total


def fuse_view_logits(logits_ap: Any, logits_lateral: Any) -> Any:
    """The official test-time rule: the sum of both branches' logits ``(B, K, X, Y, Z)``.

    (Validation averages them instead, which has the same argmax.)
    """
    return logits_ap + logits_lateral


def predict_labels(logits_ap: Any, logits_lateral: Any) -> Any:
    """Label volume ``(B, X, Y, Z)`` (int64): argmax over classes of :func:`fuse_view_logits`."""
    return fuse_view_logits(logits_ap, logits_lateral).argmax(dim=1)


# ----------------------------------------------------------------------------------- key maps
_MLP_RULES = ((r"\.mlp\.fc1\.", ".mlp.linear1."), (r"\.mlp\.fc2\.", ".mlp.linear2."))
_MASKS = r"\.attn_mask$"


def swin_x2s_official_map(state_dict: Mapping[str, Any], model: Any, notes: list[str]) -> dict[str, Any]:
    """Official Swin-X2S checkpoint (liukuan5625/Swin-X2S ``trainer.save_checkpoint``) -> medswin ``swin_x2s*``.

    Names match one to one except the Swin MLP (``fc1/fc2`` -> ``linear1/linear2``); the stored
    ``attn_mask`` buffers of the shifted blocks are dropped because medswin computes the same masks
    at run time (the official padding rule and ours agree whenever the official model can run).
    """
    sd = strip_prefixes(state_dict, ("module.",))
    masks = [k for k in sd if k.endswith(".attn_mask")]
    if masks:
        notes.append(
            f"dropped {len(masks)} stored shifted-window masks (attn_mask); medswin computes them at run time"
        )
    sd = drop_keys(sd, _MASKS)
    _note_variant(sd, model, notes)
    return rename_keys(sd, _MLP_RULES)


def _note_variant(state_dict: Mapping[str, Any], model: Any, notes: list[str]) -> None:
    """Name the Swin-X2S size a file holds when it is not the model's (its first conv gives the feature size)."""
    key = "encoder1.layer.conv1.conv.weight"
    theirs, ours = state_dict.get(key), model.state_dict().get(key)
    if theirs is None or ours is None or theirs.shape[0] == ours.shape[0]:
        return
    sizes = {settings["feature_size"]: name for name, settings in SWIN_X2S_VARIANTS.items()}
    size = sizes.get(int(theirs.shape[0]))
    if size is not None:
        notes.append(
            f"the file holds a Swin-X2S-{size.capitalize()} (feature_size {theirs.shape[0]}), this model has feature_size "
            f"{ours.shape[0]}: import it with the swin_x2s_{size} card of its dataset (e.g. swin_x2s_{size}_<dataset>)"
        )


def swin_x2s_imagenet_map(state_dict: Mapping[str, Any], model: Any, notes: list[str]) -> dict[str, Any]:
    """Microsoft ImageNet Swin (``{"model": ...}``) -> ``swinViT`` of a Swin-X2S, as the official ``main.py`` adapts it.

    The 4×4 RGB patch kernel is subsampled to 2×2 (every other tap), its three input channels are
    repeated to 30 and the first ``in_channels`` kept; every key gets the ``swinViT.`` prefix.
    Tensors whose name or shape the model lacks are skipped, as the official loader does (the
    classifier, the final 768-wide norm, the last stage's merging, stored masks). Partial: the 3D
    blocks, the cross-attention and the side-output norms keep their initial values.
    """
    import torch

    sd = drop_keys(strip_prefixes(state_dict, ("module.",)), _MASKS)
    sd = rename_keys(sd, _MLP_RULES)
    own = model.state_dict()
    weight = sd.get("patch_embed.proj.weight")
    target = own.get("swinViT.patch_embed.proj.weight")
    if (
        weight is not None
        and target is not None
        and weight.ndim == 4
        and weight.shape[-1] == 2 * target.shape[-1]
    ):
        sub = weight[:, :, ::2, ::2]
        repeats = -(-max(30, target.shape[1]) // sub.shape[1])
        sd["patch_embed.proj.weight"] = torch.cat([sub] * repeats, dim=1)[:, : target.shape[1]].contiguous()
        notes.append(
            f"patch embedding {tuple(weight.shape)} -> {tuple(sd['patch_embed.proj.weight'].shape)}: every other "
            f"kernel tap, RGB channels repeated, first {target.shape[1]} kept (official rule)"
        )
    out: dict[str, Any] = {}
    skipped = []
    for key, value in sd.items():
        name = f"swinViT.{key}"
        if name in own and tuple(own[name].shape) == tuple(value.shape):
            out[name] = value
        else:
            skipped.append(key)
    if skipped:
        shown = ", ".join(skipped[:6]) + (" ..." if len(skipped) > 6 else "")
        notes.append(f"skipped {len(skipped)} ImageNet tensors this model has no place for ({shown})")
    notes.append(
        "ImageNet weights fill the 2D Swin encoder only; 3D blocks, fusion and head keep their initial values"
    )
    return out


_VARIANT_NAMES = tuple(f"swin_x2s_{v}" for v in SWIN_X2S_VARIANTS)

register_model(
    "swin_x2s",
    SwinX2SConfig,
    build_swin_x2s,
    spatial_dims=3,
    description="Swin-X2S (Liu et al.): AP + lateral radiographs -> 3D labels; shared 2D Swin, cross-view attention",
)
for _variant, _settings in SWIN_X2S_VARIANTS.items():
    register_model(
        f"swin_x2s_{_variant}",
        SwinX2SConfig,
        build_swin_x2s,
        spatial_dims=3,
        description=(
            f"Swin-X2S-{_variant.capitalize()}: feature {_settings['feature_size']}, depths "
            f"{'-'.join(map(str, _settings['depths']))}, heads {'-'.join(map(str, _settings['num_heads']))}"
        ),
        defaults=dict(_settings),
        official_parameters=SWIN_X2S_PARAMETERS[_variant],
    )
register_key_map(
    "swin_x2s_official",
    swin_x2s_official_map,
    architectures=("swin_x2s", *_VARIANT_NAMES),
    description="Swin-X2S trainer checkpoint ({'state_dict', 'epoch', 'best_acc', ...}; fc1/fc2, attn_mask)",
    default=True,
)
register_key_map(
    "swin_x2s_imagenet",
    swin_x2s_imagenet_map,
    architectures=("swin_x2s", *_VARIANT_NAMES),
    description="Microsoft ImageNet Swin ({'model': ...}, e.g. swin_small_patch4_window7_224_22k) -> swinViT only",
    partial=True,
)
