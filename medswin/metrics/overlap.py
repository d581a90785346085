"""Overlap and volume metrics of one binary structure: Dice, IoU, sensitivity, precision, volumes.

All functions take a prediction and a reference mask of one shape ``(X, Y[, Z])`` (any dtype;
non-zero is foreground). Empty-mask policy, the same for every ratio here:

- both masks empty: the structure is correctly absent, the ratio is **1**;
- only one mask empty (a missed structure or a false positive): the ratio is **0**.

So no ratio is ever NaN. MONAI's ``compute_dice(ignore_empty=True)`` (its default) returns NaN when
the reference is empty and its mean reduction then drops that case, which hides false positives.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from medswin.metrics._checks import as_mask_pair, as_spacing

__all__ = [
    "OverlapCounts",
    "dice",
    "iou",
    "precision",
    "sensitivity",
    "structure_dice",
    "volume_ml",
    "voxel_volume_ml",
]


@dataclass(frozen=True)
class OverlapCounts:
    """Voxel counts of one structure: predicted, reference and both (true positives)."""

    pred: int
    ref: int
    both: int

    @classmethod
    def of(cls, pred: np.ndarray, ref: np.ndarray) -> OverlapCounts:
        pred = np.asarray(pred, dtype=bool)
        ref = np.asarray(ref, dtype=bool)
        return cls(int(np.count_nonzero(pred)), int(np.count_nonzero(ref)), int(np.count_nonzero(pred & ref)))

    def _ratio(self, numerator: float, denominator: float) -> float:
        if self.pred == 0 and self.ref == 0:
            return 1.0
        return numerator / denominator if denominator > 0 else 0.0

    @property
    def dice(self) -> float:
        """``2|P∩R| / (|P| + |R|)``."""
        return self._ratio(2.0 * self.both, self.pred + self.ref)

    @property
    def iou(self) -> float:
        """Jaccard index ``|P∩R| / |P∪R|``."""
        return self._ratio(self.both, self.pred + self.ref - self.both)

    @property
    def sensitivity(self) -> float:
        """Recall, true-positive rate ``|P∩R| / |R|``."""
        return self._ratio(self.both, self.ref)

    @property
    def precision(self) -> float:
        """Positive predictive value ``|P∩R| / |P|``."""
        return self._ratio(self.both, self.pred)


def dice(pred: np.ndarray, ref: np.ndarray) -> float:
    """Dice similarity coefficient ``2|P∩R| / (|P| + |R|)`` in [0, 1]; 1 if both masks are empty.

    Args:
        pred: predicted mask, shape ``(X, Y[, Z])``.
        ref: reference mask, same shape.
    """
    pred, ref, _ = as_mask_pair(pred, ref, 1.0)
    return OverlapCounts.of(pred, ref).dice


def structure_dice(
    predicted: np.ndarray, truth: np.ndarray, structures: Mapping[str, tuple[int, ...]]
) -> dict[str, float]:
    """Dice per named structure of two label maps, a structure being a set of label values.

    A structure absent from both scores 1 (medswin's empty-mask policy); training validation and
    the demo builders score with it.

    Args:
        predicted, truth: label maps of one shape.
        structures: name -> the label values that make it up (``{"TC": (1, 3)}``).
    """
    return {
        name: dice(np.isin(predicted, values), np.isin(truth, values)) for name, values in structures.items()
    }


def iou(pred: np.ndarray, ref: np.ndarray) -> float:
    """Intersection over union (Jaccard) ``|P∩R| / |P∪R|`` in [0, 1]; 1 if both masks are empty."""
    pred, ref, _ = as_mask_pair(pred, ref, 1.0)
    return OverlapCounts.of(pred, ref).iou


def sensitivity(pred: np.ndarray, ref: np.ndarray) -> float:
    """Sensitivity (recall) ``|P∩R| / |R|``; 1 if both masks are empty, 0 if only the reference is."""
    pred, ref, _ = as_mask_pair(pred, ref, 1.0)
    return OverlapCounts.of(pred, ref).sensitivity


def precision(pred: np.ndarray, ref: np.ndarray) -> float:
    """Precision (positive predictive value) ``|P∩R| / |P|``; 1 if both are empty, 0 if only the prediction is."""
    pred, ref, _ = as_mask_pair(pred, ref, 1.0)
    return OverlapCounts.of(pred, ref).precision


def voxel_volume_ml(spacing: Sequence[float] | np.ndarray) -> float:
    """Volume of one voxel in mL (1 mL = 1000 mm³); for 2D spacing, the area of one pixel in cm²."""
    spacing = np.asarray(spacing, dtype=np.float64)
    return float(np.prod(spacing)) / (1000.0 if spacing.size == 3 else 100.0)


def volume_ml(mask: np.ndarray, spacing: float | Sequence[float] | np.ndarray) -> float:
    """Volume of a mask in mL: foreground voxel count × voxel volume (area in cm² for 2D masks).

    Args:
        mask: binary mask, shape ``(X, Y[, Z])``.
        spacing: voxel size in mm per axis (scalar for isotropic).
    """
    mask = np.asarray(mask)
    return int(np.count_nonzero(mask)) * voxel_volume_ml(as_spacing(spacing, mask.ndim))
