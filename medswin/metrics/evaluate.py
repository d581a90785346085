"""Evaluate a predicted label image against a reference on one grid, and summarise many cases.

:func:`evaluate_case` checks what a metric silently assumes (same grid, integer labels, labels from
the declared set) and raises :class:`~medswin.errors.MetricInputError` naming both files;
:func:`summarize` aggregates per label without dropping anything: failed cases are listed, the
empty-mask values (see :mod:`medswin.metrics.surface`) enter the means, and every label reports how
many of its cases were empty. :func:`with_every_label` makes the label set one rule: every label
any case reported is reported for every evaluated case.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from medswin.errors import MetricInputError
from medswin.io.image import Image
from medswin.metrics.brats import BratsRegionMetrics, LesionWiseSettings, brats_metrics
from medswin.metrics.multilabel import METRIC_COLUMNS, LabelMetrics, label_metrics
from medswin.metrics.statistics import describe

__all__ = ["BRATS_COLUMNS", "CaseRecord", "CaseResult", "evaluate_case", "summarize", "with_every_label"]

log = logging.getLogger(__name__)

#: extra columns of BraTS rows (see :class:`~medswin.metrics.brats.BratsRegionMetrics`).
BRATS_COLUMNS: tuple[str, ...] = (
    "legacy_hd95",
    "lesion_dice",
    "lesion_hd95",
    "lesion_tp",
    "lesion_fn",
    "lesion_fp",
)


_Record = TypeVar("_Record", bound="CaseRecord")


@dataclass
class CaseRecord:
    """One evaluated case, or why it could not be evaluated: the part every evaluation shares.

    Attributes:
        case: case id (file name without its image ending in the CLI).
        pred_path, ref_path: source files, when known.
        error: the failure message; the metric lists are then empty.
    """

    case: str
    pred_path: str | None = None
    ref_path: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @classmethod
    def failed(
        cls: type[_Record],
        case: str,
        error: str | BaseException,
        pred_path: str | None = None,
        ref_path: str | None = None,
    ) -> _Record:
        return cls(case=case, pred_path=pred_path, ref_path=ref_path, error=str(error))

    def failure(self) -> dict[str, str | None]:
        """The summaries' ``failed`` entry of this case."""
        return {"case": self.case, "error": self.error, "pred": self.pred_path, "ref": self.ref_path}


@dataclass
class CaseResult(CaseRecord):
    """Metrics of one case (:func:`evaluate_case`), or why it could not be evaluated.

    Attributes:
        rows: one flat dict per label or region: ``label``, ``empty``, the metric columns
            (:data:`~medswin.metrics.multilabel.METRIC_COLUMNS`), ``nsd_tolerance_mm`` and, for
            BraTS, :data:`BRATS_COLUMNS`; empty for a failed case.
        brats: per-region BraTS details (lesion lists), when evaluated with ``brats=True``.
    """

    rows: list[dict[str, Any]] = field(default_factory=list, kw_only=True)
    brats: list[BratsRegionMetrics] = field(default_factory=list, kw_only=True)


def _name(image: Image, fallback: str) -> str:
    return str(image.meta.get("path") or fallback)


def _label_array(image: Image, where: str) -> np.ndarray:
    """The single channel of a label image as a non-negative integer array."""
    if image.num_channels != 1:
        raise MetricInputError(f"{where}: a label image has one channel, this one has {image.num_channels}")
    array = np.asarray(image.array[0])
    if array.dtype == bool:
        return array.astype(np.uint8)
    if not np.issubdtype(array.dtype, np.integer):
        if not np.issubdtype(array.dtype, np.floating):
            raise MetricInputError(f"{where}: label voxels must be integers, got dtype {array.dtype}")
        finite = np.isfinite(array)
        fractional = ~finite | (np.floor(array) != array)
        if fractional.any():
            example = array[fractional].flat[0]
            raise MetricInputError(
                f"{where}: label image has non-integer values (e.g. {example!r}); is it a probability map? "
                "Threshold or argmax it into integer labels first"
            )
        if array.size and (array.min() < 0 or array.max() > np.iinfo(np.int32).max):
            raise MetricInputError(f"{where}: label values must be between 0 and 2^31-1")
        array = array.astype(np.int32)
    elif array.size and array.min() < 0:
        raise MetricInputError(
            f"{where}: label image has negative values (min {array.min()}); labels must be >= 0"
        )
    return array


def _check_declared(array: np.ndarray, declared: set[int], where: str, hint: str) -> None:
    present = set(np.unique(array).tolist()) - {0}
    unknown = sorted(present - declared)
    if unknown:
        raise MetricInputError(
            f"{where}: labels {unknown} are not among the declared labels {sorted(declared)}{hint}"
        )


def evaluate_case(
    pred: Image,
    ref: Image,
    labels: Sequence[int] | None = None,
    nsd_tolerance_mm: float = 2.0,
    empty_distance_mm: float | None = None,
    brats: bool = False,
    brats_settings: LesionWiseSettings | None = None,
    include_rc: bool = False,
    case: str | None = None,
    jobs: int | None = None,
    cancel: Callable[[], bool] | None = None,
) -> CaseResult:
    """Every metric of every label (or BraTS region) of a prediction against its reference.

    Args:
        pred: predicted label image, one channel ``(1, X, Y[, Z])``.
        ref: reference label image on the same grid.
        labels: label values to evaluate; any other non-zero value in either image is an error.
            Default: every non-zero value present in either image.
        nsd_tolerance_mm: NSD tolerance in mm.
        empty_distance_mm: distance reported when one mask of a label is empty (default: diagonal
            of the image extent). Not with ``brats``, which uses ``brats_settings.penalty_mm`` (374).
        brats: evaluate BraTS regions WT/TC/ET (+RC with ``include_rc``) with lesion-wise scores
            instead of single labels.
        brats_settings: lesion-wise parameters (default BraTS 2023 GLI).
        include_rc: BraTS 2024: also evaluate label 4, resection cavity.
        case: case id (default: the reference file name).
        jobs: threads over labels.
        cancel: asked before each label (not in BraTS mode); True stops with ``CancelledError``.

    Raises:
        MetricInputError: the images are not on one grid, are not single-channel integer label
            images, or hold labels outside the declared set.
    """
    pred_name, ref_name = _name(pred, "<prediction>"), _name(ref, "<reference>")
    case = case or Path(ref_name).name
    difference = pred.grid_difference(ref)
    if difference is not None:
        raise MetricInputError(
            f"{pred_name} and {ref_name} are not on one grid ({difference}); resample the prediction onto the "
            "reference grid before evaluating"
        )
    pred_array = _label_array(pred, pred_name)
    ref_array = _label_array(ref, ref_name)
    spacing = ref.spacing
    if brats:
        if empty_distance_mm is not None:
            raise MetricInputError(
                "empty_distance_mm does not apply to BraTS mode: it uses the challenge's penalty "
                "(LesionWiseSettings.penalty_mm, 374 mm)"
            )
        declared = {1, 2, 3, 4} if include_rc else {1, 2, 3}
        hint = (
            "" if include_rc else " (label 4 is the BraTS 2024 resection cavity: evaluate it with include_rc)"
        )
        _check_declared(pred_array, declared, pred_name, hint)
        _check_declared(ref_array, declared, ref_name, hint)
        regions = brats_metrics(
            pred_array,
            ref_array,
            spacing,
            include_rc=include_rc,
            settings=brats_settings,
            nsd_tolerance_mm=nsd_tolerance_mm,
        )
        rows = [region.as_row() for region in regions]
        return CaseResult(case, pred_name, ref_name, rows=rows, brats=regions)
    if labels is not None:
        labels = [int(v) for v in labels]
        if any(v <= 0 for v in labels):
            raise MetricInputError(f"labels to evaluate must be positive integers, got {labels}")
        _check_declared(pred_array, set(labels), pred_name, "")
        _check_declared(ref_array, set(labels), ref_name, "")
    results: list[LabelMetrics] = label_metrics(
        pred_array, ref_array, spacing, labels, nsd_tolerance_mm, empty_distance_mm, jobs, cancel
    )
    return CaseResult(case, pred_name, ref_name, rows=[m.as_dict() for m in results])


def with_every_label(results: Sequence[CaseResult], nsd_tolerance_mm: float = 2.0) -> list[CaseResult]:
    """Give every evaluated case a row for every label any case reported (both-empty values where it
    has none), so a label's mean is over the same cases with and without ``--labels``.

    Without it a case empty in both images simply had no row for that label, and the label's mean
    covered only the cases where it appeared (Dice 0.0 over 1 case instead of 0.8 over 5).
    BraTS results already hold their fixed regions and are returned unchanged.
    """
    labels = sorted({int(row["label"]) for r in results if r.ok and not r.brats for row in r.rows})
    nothing = np.zeros((1, 1, 1), dtype=np.uint8)
    completed = []
    for result in results:
        present = set() if result.brats else {int(row["label"]) for row in result.rows}
        absent = [label for label in labels if label not in present]
        if result.ok and not result.brats and absent:
            empty = label_metrics(nothing, nothing, 1.0, absent, nsd_tolerance_mm)  # both-empty policy
            rows = sorted([*result.rows, *(m.as_dict() for m in empty)], key=lambda row: int(row["label"]))
            result = dataclasses.replace(result, rows=rows)
        completed.append(result)
    return completed


def summarize(results: Iterable[CaseResult]) -> dict[str, Any]:
    """Per-label mean, sample std, median, min and max of every metric over the evaluated cases.

    Nothing is dropped: empty-mask cases enter with their policy values (and are counted under
    ``empty``); a non-finite value (``rel_vol_diff`` of a false positive is +inf) makes the mean
    non-finite and is counted in ``n_nonfinite``; failed cases are listed under ``failed``.

    Returns:
        ``{"n_cases", "n_evaluated", "n_failed", "failed": [{"case", "error", "pred", "ref"}],
        "labels": {label: {"n", "empty": {"both", "pred", "ref"}, "metrics": {column: stats}}}}``.
    """
    results = list(results)
    per_label: dict[str, list[dict[str, Any]]] = {}
    failed = [result.failure() for result in results if not result.ok]
    for result in results:
        for row in result.rows:
            per_label.setdefault(str(row["label"]), []).append(row)
    labels: dict[str, Any] = {}
    for label, rows in per_label.items():
        columns = [c for c in (*METRIC_COLUMNS, *BRATS_COLUMNS) if all(c in row for row in rows)]
        labels[label] = {
            "n": len(rows),
            "empty": {
                kind: sum(1 for row in rows if row["empty"] == kind) for kind in ("both", "pred", "ref")
            },
            "metrics": {column: describe([float(row[column]) for row in rows]) for column in columns},
        }
    return {
        "n_cases": len(results),
        "n_evaluated": len(results) - len(failed),
        "n_failed": len(failed),
        "failed": failed,
        "labels": labels,
    }
