"""Geometry helpers: exact reorientation and resampling onto a spacing or another image's grid.

``reorient`` only permutes and flips array axes, so it is lossless and its inverse
(``reorient(reorient(img, "RAS"), img.orientation)``) returns the same voxels bit for bit.
Resampling goes through SimpleITK's ``ResampleImageFilter`` (identity transform, physical space):
linear for intensity images, nearest neighbour for labels unless told otherwise.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from medswin.errors import GeometryError
from medswin.io.image import Image

__all__ = [
    "Interpolation",
    "reorient",
    "resample_to_spacing",
    "resample_to_reference",
    "resample_to_grid",
    "stack_channels",
]

log = logging.getLogger(__name__)

Interpolation = Literal["linear", "nearest", "bspline"]

_AXIS_LABELS = (("L", "R"), ("P", "A"), ("I", "S"))


def _target_orientation(code: str, dims: int) -> np.ndarray:
    import nibabel.orientations as nio

    code = code.upper()
    labels = _AXIS_LABELS[:dims]
    letters = [letter for pair in labels for letter in pair]
    if len(code) != dims or any(c not in letters for c in code):
        raise GeometryError(
            f"orientation {code!r} is not a {dims}-letter code over {''.join(letters)} (e.g. 'RAS')"
        )
    axes = [next(i for i, pair in enumerate(labels) if c in pair) for c in code]
    if len(set(axes)) != dims:
        raise GeometryError(f"orientation {code!r} names an axis twice; each of {labels} must appear once")
    return nio.axcodes2ornt(tuple(code), labels=labels)


def reorient(image: Image, orientation: str = "RAS") -> Image:
    """The same image with its array axes permuted/flipped to follow ``orientation`` (RAS-style code).

    ``"RAS"`` means array axis 0 runs towards the patient's right, 1 anterior, 2 superior (what
    nibabel's ``as_closest_canonical`` and MONAI's ``Orientation(axcodes="RAS")`` produce). Oblique
    images get the closest axis order; their direction stays oblique. Voxels are not interpolated.
    """
    import nibabel.orientations as nio

    dims = image.spatial_dims
    current = nio.io_orientation(image.affine)
    transform = nio.ornt_transform(current, _target_orientation(orientation, dims))
    array = image.array
    direction = np.zeros_like(image.direction)
    spacing = [0.0] * dims
    origin = np.asarray(image.origin, dtype=np.float64).copy()
    for axis, (new_axis, flip) in enumerate(transform.astype(int)):
        if flip < 0:
            array = np.flip(array, axis=axis + 1)
            origin = origin + image.direction[:, axis] * image.spacing[axis] * (image.shape[axis] - 1)
        direction[:, new_axis] = image.direction[:, axis] * flip
        spacing[new_axis] = image.spacing[axis]
    order = [0] + [1 + int(np.flatnonzero(transform[:, 0] == new_axis)[0]) for new_axis in range(dims)]
    array = np.ascontiguousarray(np.transpose(array, order))
    return Image(array, tuple(spacing), tuple(origin), direction, image.kind, copy.deepcopy(image.meta))


def _interpolator(image: Image, interpolation: Interpolation | None) -> int:
    import SimpleITK as sitk

    chosen = interpolation or ("nearest" if image.kind == "label" else "linear")
    table = {"linear": sitk.sitkLinear, "nearest": sitk.sitkNearestNeighbor, "bspline": sitk.sitkBSpline}
    if chosen not in table:
        raise ValueError(f"interpolation must be one of {sorted(table)}, got {chosen!r}")
    if image.kind == "label" and chosen != "nearest":
        log.warning("resampling a label image with %s interpolation mixes label values", chosen)
    return table[chosen]


def resample_to_grid(
    image: Image,
    size: Sequence[int],
    spacing: Sequence[float],
    origin: Sequence[float],
    direction: np.ndarray,
    *,
    interpolation: Interpolation | None = None,
    default_value: float | None = None,
) -> Image:
    """Resample ``image`` onto the grid (size voxels, spacing mm, origin/direction LPS) in physical space.

    Points outside the input get ``default_value`` (labels: 0; intensity: the image minimum, e.g. air in CT).
    Intensities come back as float32 (float64 inputs stay float64); labels keep their type.
    """
    import SimpleITK as sitk

    dims = image.spatial_dims
    if not (len(size) == len(spacing) == len(origin) == dims):
        raise GeometryError(f"grid of {len(size)} axes cannot hold a {dims}D image")
    interpolator = _interpolator(image, interpolation)
    source = image
    if interpolator != sitk.sitkNearestNeighbor and image.array.dtype != np.float64:
        source = image.with_array(image.array.astype(np.float32))
    if default_value is None:
        default_value = 0.0 if image.kind == "label" or image.array.size == 0 else float(image.array.min())
    resampler = sitk.ResampleImageFilter()
    resampler.SetSize([int(n) for n in size])
    resampler.SetOutputSpacing([float(s) for s in spacing])
    resampler.SetOutputOrigin([float(o) for o in origin])
    resampler.SetOutputDirection([float(v) for v in np.asarray(direction, dtype=np.float64).ravel()])
    resampler.SetInterpolator(interpolator)
    resampler.SetDefaultPixelValue(float(default_value))
    resampler.SetTransform(sitk.Transform(dims, sitk.sitkIdentity))
    result = Image.from_sitk(resampler.Execute(source.to_sitk()), image.kind, copy.deepcopy(image.meta))
    if result.array.dtype != source.array.dtype:  # SimpleITK keeps the type; guard against surprises
        result = result.with_array(result.array.astype(source.array.dtype))
    return result


def resample_to_spacing(
    image: Image,
    spacing: float | Sequence[float | None],
    *,
    interpolation: Interpolation | None = None,
    default_value: float | None = None,
) -> Image:
    """Resample to a new voxel size (mm) over the same field of view; ``None`` keeps an axis as is.

    The centre of voxel 0 stays where it was and each axis gets ``round(n · old / new)`` voxels
    (the convention of SimpleITK/nnU-Net pipelines). Linear for intensity, nearest for labels.
    """
    dims = image.spatial_dims
    wanted = [float(spacing)] * dims if isinstance(spacing, int | float) else list(spacing)
    if len(wanted) != dims:
        raise GeometryError(f"spacing {tuple(wanted)} has {len(wanted)} values for a {dims}D image")
    new_spacing = tuple(old if new is None else float(new) for old, new in zip(image.spacing, wanted))
    if any(not np.isfinite(s) or s <= 0 for s in new_spacing):
        raise GeometryError(f"spacing must be positive, got {new_spacing}")
    if np.allclose(new_spacing, image.spacing, rtol=0, atol=1e-9):
        return image.with_array(image.array.copy())
    size = [max(1, int(round(n * old / new))) for n, old, new in zip(image.shape, image.spacing, new_spacing)]
    return resample_to_grid(
        image,
        size,
        new_spacing,
        image.origin,
        image.direction,
        interpolation=interpolation,
        default_value=default_value,
    )


def resample_to_reference(
    image: Image,
    reference: Image,
    *,
    interpolation: Interpolation | None = None,
    default_value: float | None = None,
) -> Image:
    """``image`` sampled on ``reference``'s grid (shape, spacing, origin, direction); a copy if already there."""
    if image.spatial_dims != reference.spatial_dims:
        raise GeometryError(
            f"cannot resample a {image.spatial_dims}D image onto the {reference.spatial_dims}D grid of "
            f"{reference.meta.get('path', 'the reference')}"
        )
    if image.same_grid(reference, atol_mm=1e-6):
        return Image(
            image.array.copy(),
            reference.spacing,
            reference.origin,
            reference.direction.copy(),
            image.kind,
            copy.deepcopy(image.meta),
        )
    return resample_to_grid(
        image,
        reference.shape,
        reference.spacing,
        reference.origin,
        reference.direction,
        interpolation=interpolation,
        default_value=default_value,
    )


def stack_channels(images: Sequence[Image], sources: Sequence[str | Path]) -> Image:
    """One multi-channel float32 image from channel images that share a grid (one image returns as is).

    Raises :class:`GeometryError` naming the first source (of ``sources``, one per image) that is
    not on the grid of the first.
    """
    first = images[0]
    if len(images) == 1:
        return first
    for source, image in zip(sources[1:], images[1:], strict=True):
        difference = image.grid_difference(first)
        if difference is not None:
            raise GeometryError(
                f"{source}: not on the grid of {sources[0]} ({difference}); the channels of one case must share a grid"
            )
    return first.with_array(np.concatenate([np.asarray(i.array, dtype=np.float32) for i in images], axis=0))
