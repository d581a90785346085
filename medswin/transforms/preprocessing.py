"""A model card's preprocessing as MONAI transforms, and the way back onto the input's grid.

Forward: ``Image`` -> ``MetaTensor`` on the *model grid* (the card's orientation and spacing) with
the card's intensity normalisation, built from MONAI array transforms (``Orientation``,
``Spacing``, ``ScaleIntensityRange`` / ``NormalizeIntensity`` / ``ScaleIntensity``).

Back: values on the model grid are sampled onto the input's exact grid (same shape, spacing,
origin and direction) through the two affines, in physical space: nearest neighbour for labels,
linear for probabilities. This does not replay MONAI's inverse stack (``Invertd``); it needs only
the model grid's affine, so it is exact for oblique, flipped and anisotropic inputs alike.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medswin.errors import GeometryError, ModelCardError
from medswin.io.geometry import resample_to_reference
from medswin.io.image import Image, ImageKind
from medswin.models.card import ModelCard

__all__ = [
    "build_preprocess",
    "grid_transforms",
    "model_orientation",
    "model_spacing",
    "preprocess",
    "to_input_grid",
]


def model_orientation(card: ModelCard, spatial_dims: int) -> str | None:
    """The axis code (``"RAS"``, or ``"RA"`` for 2D images) the card asks for, or ``None`` to keep the input's."""
    if not card.orientation:
        return None
    code = card.orientation.upper()
    if len(code) < spatial_dims:
        raise ModelCardError(
            f"card {card.id}: orientation {card.orientation!r} has fewer letters than the image's {spatial_dims} axes"
        )
    return code[:spatial_dims]


def model_spacing(card: ModelCard, spatial_dims: int) -> tuple[float, ...] | None:
    """Target voxel size (mm) per array axis; ``0`` keeps an axis (MONAI ``Spacing`` convention).

    A 2D card run slice by slice (``slice_axis``) may give only the in-plane spacing; the slice
    axis then keeps the input's slice thickness.
    """
    if card.spacing is None:
        return None
    spacing = [float(s) for s in card.spacing]
    if len(spacing) == spatial_dims - 1 and card.slice_axis is not None and spatial_dims == 3:
        spacing.insert(card.slice_axis, 0.0)
    if len(spacing) != spatial_dims:
        raise ModelCardError(
            f"card {card.id}: spacing {tuple(card.spacing)} has {len(card.spacing)} values for a "
            f"{spatial_dims}D image"
        )
    return tuple(spacing)


def _intensity_transform(card: ModelCard) -> Any | None:
    from monai.transforms import NormalizeIntensity, ScaleIntensity, ScaleIntensityRange

    spec = card.intensity or {"type": "none"}
    kind = spec.get("type", "none")
    if kind == "window":
        try:
            a_min, a_max = float(spec["a_min"]), float(spec["a_max"])
        except KeyError as missing:
            raise ModelCardError(f"card {card.id}: intensity window needs {missing.args[0]}") from None
        return ScaleIntensityRange(
            a_min=a_min,
            a_max=a_max,
            b_min=float(spec.get("b_min", 0.0)),
            b_max=float(spec.get("b_max", 1.0)),
            clip=bool(spec.get("clip", True)),
        )
    if kind == "zscore":
        return NormalizeIntensity(
            nonzero=bool(spec.get("nonzero", False)), channel_wise=bool(spec.get("channel_wise", False))
        )
    if kind == "range01":  # per-image min-max over all channels onto [b_min, b_max]
        return ScaleIntensity(minv=float(spec.get("b_min", 0.0)), maxv=float(spec.get("b_max", 1.0)))
    if kind == "none":
        return None
    raise ModelCardError(f"card {card.id}: unknown intensity type {kind!r}")


def grid_transforms(card: ModelCard, spatial_dims: int, *, labels: bool) -> list[Any]:
    """MONAI ``Orientation`` and ``Spacing`` onto the card's model grid, each only when the card asks:
    bilinear in float32 with border padding for images, nearest with zero padding for label maps
    (training resamples its labels with exactly the image's grid steps)."""
    from monai.transforms import Orientation, Spacing

    steps: list[Any] = []
    orientation = model_orientation(card, spatial_dims)
    if orientation is not None:
        # labels=None: read the axis labels from the MetaTensor's "space" (RAS), MONAI's new default
        steps.append(Orientation(axcodes=orientation, labels=None))
    spacing = model_spacing(card, spatial_dims)
    if spacing is not None and labels:
        steps.append(Spacing(pixdim=spacing, mode="nearest", padding_mode="zeros"))
    elif spacing is not None:
        steps.append(Spacing(pixdim=spacing, mode="bilinear", padding_mode="border", dtype=np.float32))
    return steps


def build_preprocess(card: ModelCard, spatial_dims: int = 3) -> Any:
    """MONAI ``Compose`` taking a channel-first ``MetaTensor`` (C, X, Y[, Z]) onto the model grid.

    Steps, each only when the card asks for it: ``Orientation`` to ``card.orientation``,
    ``Spacing`` to ``card.spacing`` (bilinear, computed in float32), the intensity transform, and a
    final cast to float32. The output's ``.affine`` is the model grid's RAS affine.
    """
    import torch
    from monai.transforms import Compose, EnsureType

    steps = grid_transforms(card, spatial_dims, labels=False)
    intensity = _intensity_transform(card)
    if intensity is not None:
        steps.append(intensity)
    steps.append(EnsureType(data_type="tensor", dtype=torch.float32, track_meta=True))
    return Compose(steps)


def preprocess(image: Image, card: ModelCard) -> Any:
    """``image`` as the network sees it: a float32 ``MetaTensor`` (C, *model grid) with its RAS affine."""
    if image.kind != "intensity":
        raise GeometryError(
            f"{image.meta.get('path', '<in memory>')}: cannot preprocess a label image for a model"
        )
    return build_preprocess(card, image.spatial_dims)(image.to_metatensor())


def to_input_grid(
    values: np.ndarray,
    model_affine: np.ndarray,
    reference: Image,
    *,
    kind: ImageKind = "label",
) -> Image:
    """Sample ``values`` from the model grid onto ``reference``'s exact grid.

    Args:
        values: array on the model grid, ``(X', Y'[, Z'])`` or channel-first ``(C, X', Y'[, Z'])``.
        model_affine: RAS affine (``(d+1, d+1)``) of the model grid, i.e. the preprocessed tensor's ``.affine``.
        reference: the input image; the result has its shape, spacing, origin, direction and meta.
        kind: ``"label"`` (nearest neighbour, integer values kept) or ``"intensity"`` (linear,
            float32, e.g. probabilities). Points outside the model grid get 0.

    Returns:
        An :class:`Image` on ``reference``'s grid holding the resampled values.
    """
    values = np.asarray(values) if kind == "label" else np.asarray(values, dtype=np.float32)
    dims = reference.spatial_dims
    if values.ndim == dims:
        values = values[None]
    affine = np.asarray(model_affine, dtype=np.float64)
    if affine.shape != (dims + 1, dims + 1) or values.ndim != dims + 1:
        raise GeometryError(
            f"values of shape {values.shape} with a {affine.shape} affine do not describe a {dims}D grid"
        )
    on_model_grid = Image.from_affine(values, affine, kind=kind)
    resampled = resample_to_reference(
        on_model_grid, reference, interpolation="nearest" if kind == "label" else "linear", default_value=0.0
    )
    return reference.with_array(resampled.array, kind=kind)
