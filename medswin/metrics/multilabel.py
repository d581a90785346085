"""Every clinical metric of every label of a label-map pair, computed once per label, fast.

One pass over each label map finds every label's bounding box (``scipy.ndimage.find_objects``);
each label is then cropped to the union of its boxes (+1 voxel), its two surfaces are extracted
once and their distances computed once (KD-tree), and overlap, surface and volume metrics are all
read from that. Labels run in a thread pool (NumPy, SciPy's KD-tree and ndimage release the GIL).
Definitions and the empty-mask policy are those of :mod:`medswin.metrics.overlap` and
:mod:`medswin.metrics.surface` (MONAI 1.6.1 surface definitions).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from medswin.errors import CancelledError, MetricInputError
from medswin.metrics._checks import EmptyKind, as_mask_pair, as_spacing, image_diagonal_mm
from medswin.metrics.overlap import OverlapCounts, voxel_volume_ml
from medswin.metrics.surface import SurfaceDistances, distances_in_box, union_box

__all__ = ["METRIC_COLUMNS", "LabelMetrics", "binary_metrics", "label_metrics"]

#: numeric columns of :class:`LabelMetrics`, in table order.
METRIC_COLUMNS: tuple[str, ...] = (
    "dice",
    "iou",
    "sensitivity",
    "precision",
    "hd",
    "hd95",
    "assd",
    "msd_pred_to_ref",
    "msd_ref_to_pred",
    "nsd",
    "vol_pred_ml",
    "vol_ref_ml",
    "vol_diff_ml",
    "abs_vol_diff_ml",
    "rel_vol_diff",
)


@dataclass(frozen=True)
class LabelMetrics:
    """All metrics of one structure (one label value or region) of one case.

    Attributes:
        label: label value (int) or region name (str, e.g. "WT").
        empty: "both", "pred" (missed), "ref" (false positive) or "" — which masks were empty, so
            that the fixed values of the empty-mask policy are never mistaken for measurements.
        dice, iou, sensitivity, precision: overlap ratios in [0, 1] (1 if both empty, 0 if one is).
        hd, hd95, assd: symmetric surface distances in mm (0 if both empty, ``empty_distance_mm`` if one is).
        msd_pred_to_ref, msd_ref_to_pred: directed mean surface distances in mm.
        nsd: normalised surface Dice at ``nsd_tolerance_mm`` (1 if both empty, 0 if one is).
        vol_pred_ml, vol_ref_ml: volumes in mL (cm² for 2D).
        vol_diff_ml: ``vol_pred_ml - vol_ref_ml`` (signed); abs_vol_diff_ml: its magnitude.
        rel_vol_diff: ``vol_diff_ml / vol_ref_ml`` (signed fraction); 0 if both are empty and
            +inf if only the reference is (a false positive has no finite relative error).
        nsd_tolerance_mm: the NSD tolerance used.
    """

    label: int | str
    empty: EmptyKind
    dice: float
    iou: float
    sensitivity: float
    precision: float
    hd: float
    hd95: float
    assd: float
    msd_pred_to_ref: float
    msd_ref_to_pred: float
    nsd: float
    vol_pred_ml: float
    vol_ref_ml: float
    vol_diff_ml: float
    abs_vol_diff_ml: float
    rel_vol_diff: float
    nsd_tolerance_mm: float

    def as_dict(self) -> dict[str, int | str | float]:
        return asdict(self)


def _from_parts(
    label: int | str,
    counts: OverlapCounts,
    distances: SurfaceDistances,
    voxel_ml: float,
    nsd_tolerance_mm: float,
) -> LabelMetrics:
    vol_pred, vol_ref = counts.pred * voxel_ml, counts.ref * voxel_ml
    diff = vol_pred - vol_ref
    # a false positive (empty reference) has no finite relative error
    relative = diff / vol_ref if counts.ref else (0.0 if counts.pred == 0 else float("inf"))
    return LabelMetrics(
        label=label,
        empty=distances.empty,
        dice=counts.dice,
        iou=counts.iou,
        sensitivity=counts.sensitivity,
        precision=counts.precision,
        hd=distances.hausdorff(),
        hd95=distances.hausdorff(95.0),
        assd=distances.average_symmetric(),
        msd_pred_to_ref=distances.mean_pred_to_ref(),
        msd_ref_to_pred=distances.mean_ref_to_pred(),
        nsd=distances.surface_dice(nsd_tolerance_mm),
        vol_pred_ml=vol_pred,
        vol_ref_ml=vol_ref,
        vol_diff_ml=diff,
        abs_vol_diff_ml=abs(diff),
        rel_vol_diff=relative,
        nsd_tolerance_mm=float(nsd_tolerance_mm),
    )


def _metrics_in_box(
    label: int | str,
    pred: np.ndarray,
    ref: np.ndarray,
    spacing: np.ndarray,
    nsd_tolerance_mm: float,
    empty_distance_mm: float,
) -> LabelMetrics:
    counts = OverlapCounts.of(pred, ref)
    distances = distances_in_box(pred, ref, spacing, empty_distance_mm)
    return _from_parts(label, counts, distances, voxel_volume_ml(spacing), nsd_tolerance_mm)


def binary_metrics(
    pred: np.ndarray,
    ref: np.ndarray,
    spacing: float | Sequence[float] | np.ndarray,
    label: int | str = 1,
    nsd_tolerance_mm: float = 2.0,
    empty_distance_mm: float | None = None,
) -> LabelMetrics:
    """Every metric of one binary structure.

    Args:
        pred: predicted mask ``(X, Y[, Z])``; non-zero is foreground.
        ref: reference mask, same shape.
        spacing: voxel size in mm per axis.
        label: name or value to carry in the result.
        nsd_tolerance_mm: NSD tolerance in mm.
        empty_distance_mm: distance reported when exactly one mask is empty (default: diagonal
            of the image extent ``shape × spacing``).
    """
    pred, ref, spacing_mm = as_mask_pair(pred, ref, spacing)
    if empty_distance_mm is None:
        empty_distance_mm = image_diagonal_mm(pred.shape, spacing_mm)
    box = union_box(pred, ref) or tuple(slice(0, 0) for _ in pred.shape)
    return _metrics_in_box(label, pred[box], ref[box], spacing_mm, nsd_tolerance_mm, float(empty_distance_mm))


def _check_label_map(array: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype == bool:
        return array.view(np.uint8)
    if not np.issubdtype(array.dtype, np.integer):
        raise MetricInputError(f"{what} label map has dtype {array.dtype}; convert it to integers first")
    if array.size and array.min() < 0:
        raise MetricInputError(f"{what} label map has negative values; labels must be >= 0")
    return array


def _grown_union(a: slice | None, b: slice | None, size: int) -> slice:
    bounds = [s for s in (a, b) if s is not None]
    return slice(max(min(s.start for s in bounds) - 1, 0), min(max(s.stop for s in bounds) + 1, size))


def label_metrics(
    pred: np.ndarray,
    ref: np.ndarray,
    spacing: float | Sequence[float] | np.ndarray,
    labels: Sequence[int] | None = None,
    nsd_tolerance_mm: float = 2.0,
    empty_distance_mm: float | None = None,
    jobs: int | None = None,
    cancel: Callable[[], bool] | None = None,
) -> list[LabelMetrics]:
    """Every metric of every label of a predicted and a reference label map.

    Args:
        pred: predicted integer label map ``(X, Y[, Z])`` (0 is background).
        ref: reference label map, same shape.
        spacing: voxel size in mm per axis.
        labels: label values to evaluate (default: every non-zero value in either map). A label
            absent from both maps is reported with the both-empty values.
        nsd_tolerance_mm: NSD tolerance in mm.
        empty_distance_mm: distance reported when exactly one mask of a label is empty (default:
            diagonal of the image extent ``shape × spacing``).
        jobs: threads over labels (default: the number of CPUs).
        cancel: asked before each label; when it returns True the evaluation stops with
            ``CancelledError`` (a viewer's Cancel button: one label's surface distances can take seconds).

    Returns:
        one :class:`LabelMetrics` per label, in the order of ``labels``.
    """
    pred = _check_label_map(pred, "prediction")
    ref = _check_label_map(ref, "reference")
    if pred.shape != ref.shape:
        raise MetricInputError(f"prediction shape {pred.shape} differs from reference shape {ref.shape}")
    spacing_mm = as_spacing(spacing, pred.ndim)
    if labels is None:
        labels = sorted(int(v) for v in np.union1d(np.unique(pred), np.unique(ref)) if v != 0)
    labels = [int(v) for v in labels]
    if any(v <= 0 for v in labels):
        raise MetricInputError(f"labels to evaluate must be positive integers, got {labels}")
    if empty_distance_mm is None:
        empty_distance_mm = image_diagonal_mm(pred.shape, spacing_mm)
    if not labels:
        return []
    top = max(labels)
    boxes_pred = ndimage.find_objects(pred, max_label=top)
    boxes_ref = ndimage.find_objects(ref, max_label=top)

    def one(label: int) -> LabelMetrics:
        if cancel is not None and cancel():
            raise CancelledError("evaluation cancelled")
        box_pred, box_ref = boxes_pred[label - 1], boxes_ref[label - 1]
        if box_pred is None and box_ref is None:
            box = tuple(slice(0, 0) for _ in pred.shape)
        else:
            box = tuple(
                _grown_union(
                    None if box_pred is None else box_pred[axis],
                    None if box_ref is None else box_ref[axis],
                    n,
                )
                for axis, n in enumerate(pred.shape)
            )
        return _metrics_in_box(
            label,
            pred[box] == label,
            ref[box] == label,
            spacing_mm,
            nsd_tolerance_mm,
            float(empty_distance_mm),
        )

    workers = min(jobs or os.cpu_count() or 1, len(labels))
    if workers <= 1:
        return [one(v) for v in labels]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="medswin-metrics") as pool:
        return list(pool.map(one, labels))
