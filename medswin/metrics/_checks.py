"""Input checks and the empty-mask vocabulary shared by every metric module."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from medswin.errors import MetricInputError

__all__ = ["EmptyKind", "as_mask_pair", "as_spacing", "empty_kind", "image_diagonal_mm"]

#: Which of the two masks is empty: ``"both"``, only the prediction (``"pred"``, a missed
#: structure), only the reference (``"ref"``, a false positive), or neither (``""``).
EmptyKind = Literal["both", "pred", "ref", ""]


def empty_kind(pred_voxels: int, ref_voxels: int) -> EmptyKind:
    """Name the empty case from the foreground voxel counts of prediction and reference."""
    if pred_voxels == 0 and ref_voxels == 0:
        return "both"
    if pred_voxels == 0:
        return "pred"
    if ref_voxels == 0:
        return "ref"
    return ""


def as_spacing(spacing: float | Sequence[float] | np.ndarray, ndim: int) -> np.ndarray:
    """Voxel spacing (mm) as a float64 vector of length ``ndim``; a scalar means isotropic."""
    values = np.atleast_1d(np.asarray(spacing, dtype=np.float64))
    if values.size == 1:
        values = np.repeat(values, ndim)
    if values.shape != (ndim,):
        raise MetricInputError(
            f"spacing {tuple(values)} has {values.size} values for an array with {ndim} axes"
        )
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise MetricInputError(f"spacing must be finite and positive (mm), got {tuple(values)}")
    return values


def as_mask_pair(
    pred: np.ndarray, ref: np.ndarray, spacing: float | Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check two binary masks share one shape and return them as bool arrays with the spacing vector."""
    pred = np.asarray(pred)
    ref = np.asarray(ref)
    if pred.shape != ref.shape:
        raise MetricInputError(f"prediction shape {pred.shape} differs from reference shape {ref.shape}")
    if pred.ndim not in (2, 3):
        raise MetricInputError(f"masks must be 2D or 3D spatial arrays, got shape {pred.shape}")
    return pred.astype(bool, copy=False), ref.astype(bool, copy=False), as_spacing(spacing, pred.ndim)


def image_diagonal_mm(shape: Sequence[int], spacing: Sequence[float] | np.ndarray) -> float:
    """Length (mm) of the diagonal of the image extent ``shape × spacing``.

    This is the default distance reported when one mask is empty: no two points of the image are
    farther apart. For BraTS (240×240×155 voxels of 1 mm) it is 373.13 mm.
    """
    return float(np.linalg.norm(np.asarray(shape, dtype=np.float64) * np.asarray(spacing, dtype=np.float64)))
