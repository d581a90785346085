"""Swin-X2S evaluation in physical units: overlap per label, clinical parameters per bone, paper-style tables.

Swin-X2S (Liu et al., arXiv:2501.05961) reconstructs 3D bone label volumes from two X-rays and
reports, per anatomy (femur, pelvis, vertebra, rib), Dice, HD95 and clinical parameters
(morphometry). Its ``test.py`` computes Dice with MONAI's ``DiceMetric`` defaults, so background
is included and classes absent from the reference are skipped; its morphometry works on meshes in
voxel units of the 128×128×160 grid (about 2.6 mm per voxel). This module evaluates the same
predictions so that the numbers mean something clinically:

- Dice per foreground label, **without background** (empty-mask policy of
  :mod:`medswin.metrics.overlap`), HD95 and ASSD in **mm** on the reference grid, all from
  :func:`~medswin.metrics.evaluate.evaluate_case`; clDice for ribs. The official-style Dice that
  includes background is reported beside it as ``dice_with_background_official``, for comparison
  with published numbers only.
- Morphometry errors in **mm and degrees** (:mod:`medswin.metrics.morphometry`): femur head, neck
  and shaft; pelvic landmarks; vertebral body, canal and spinous process; rib centrelines.

Which label is which bone comes from the dataset's label names (``data_manifests/x2s_*/dataset.json``)
through :func:`~medswin.metrics.x2s_anatomy.anatomy_from_labels`, so TotalSeg-all (55 classes) and its subsets, CTPelvic1K,
CTSpine1K, VerSe'19 and RibSeg v2 all work.

Failure policy: a structure present in the reference that cannot be measured on the prediction
(a missing label, a degenerate shape) is a **failure**: it gets rows with status ``failed`` and
its reason, is counted per parameter in the summary and never enters (or improves) a mean. A
structure absent from the reference is not compared. A case whose files cannot be read or are
not on one grid is a failed case; the others go on.
"""

from __future__ import annotations

import logging
import math
import textwrap
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from medswin.errors import MedSwinError, MetricInputError
from medswin.files import write_atomic
from medswin.io.image import Image
from medswin.metrics.evaluate import CaseRecord, evaluate_case
from medswin.metrics.morphometry import (
    FemurMorphometry,
    PelvisLandmarks,
    RibCentreline,
    VertebraMorphometry,
    centreline_dice,
    femur_morphometry,
    pelvis_landmarks,
    rib_centreline,
    vertebra_morphometry,
)
from medswin.metrics.morphometry._geometry import SUPERIOR
from medswin.metrics.report import csv_text, summary_path_for, write_summary_json
from medswin.metrics.statistics import describe
from medswin.metrics.surface import union_box
from medswin.metrics.x2s_anatomy import GROUPS, X2SAnatomy, X2SStructure, anatomy_from_labels

__all__ = [
    "MEASUREMENT_COLUMNS",
    "MORPHOMETRY_COLUMNS",
    "NOTES",
    "OVERLAP_COLUMNS",
    "X2SCaseResult",
    "dice_with_background_official",
    "evaluate_x2s_case",
    "evaluate_x2s_folders",
    "format_x2s_table",
    "measure_x2s_structures",
    "summarize_x2s",
    "recorded_quality",
    "write_x2s_csvs",
]

log = logging.getLogger(__name__)

#: columns of the overlap CSV: one row per case and foreground label (``cl_dice`` only for ribs).
OVERLAP_COLUMNS: tuple[str, ...] = (
    "case",
    "label",
    "name",
    "group",
    "empty",
    "dice",
    "hd95",
    "assd",
    "cl_dice",
    "qc",
    "qc_reason",
)

#: columns of the morphometry CSV: one row per case, structure and parameter.
MORPHOMETRY_COLUMNS: tuple[str, ...] = (
    "case",
    "structure",
    "group",
    "parameter",
    "kind",
    "unit",
    "error",
    "reference_value",
    "predicted_value",
    "status",
    "reason",
)

#: keys of :func:`measure_x2s_structures` rows: one row per structure and parameter of one label image.
MEASUREMENT_COLUMNS: tuple[str, ...] = (
    "structure",
    "group",
    "parameter",
    "kind",
    "unit",
    "value",
    "status",
    "reason",
)

#: how these numbers differ from the official Swin-X2S ones (copied into every summary).
NOTES: tuple[str, ...] = (
    "Dice excludes background: one value per foreground label present in the reference or the "
    "prediction (a missed or a false-positive label scores 0; labels absent from both are left out). "
    "The official Swin-X2S Dice (MONAI DiceMetric defaults) includes background and skips classes "
    "absent from the reference; it is given as dice_with_background_official for comparison only "
    "and is higher, most for datasets with few classes.",
    "HD95 and ASSD are in mm on the reference grid (anisotropic spacing honoured); a missed or "
    "false-positive label scores the image diagonal (medswin.metrics.surface). The official HD95 is "
    "in voxels multiplied by |affine[0,0]|.",
    "Morphometry errors are in mm and degrees in the patient frame; the official pipelines measure "
    "meshes in voxel units of the 128x128x160 grid (about 2.6 mm per voxel) with their own methods, "
    "so compare trends, not digits.",
    "A structure present in the reference that cannot be measured on the prediction is a failure: "
    "counted in n_failed, never averaged in; median_failed_as_worst ranks failures as infinite "
    "errors. A structure the reference lacks is not compared; a reference that cannot be measured "
    "is counted in n_reference_failed.",
)

_RESULT_TYPES: dict[str, type] = {
    "femur": FemurMorphometry,
    "pelvis": PelvisLandmarks,
    "vertebra": VertebraMorphometry,
    "rib": RibCentreline,
}


@dataclass
class X2SCaseResult(CaseRecord):
    """Swin-X2S metrics of one case, or why it could not be evaluated (see :class:`CaseRecord`).

    Attributes:
        overlap: one dict per foreground label (columns :data:`OVERLAP_COLUMNS` but ``case``).
        morphometry: one dict per structure and parameter (:data:`MORPHOMETRY_COLUMNS` but ``case``).
        dice_with_background_official: the case's official-style Dice (see
            :func:`dice_with_background_official`).
    """

    overlap: list[dict[str, Any]] = field(default_factory=list, kw_only=True)
    morphometry: list[dict[str, Any]] = field(default_factory=list, kw_only=True)
    dice_with_background_official: float | None = field(default=None, kw_only=True)
    quality: dict[str, Any] | None = field(default=None, kw_only=True)


def recorded_quality(pred_path: Path, case: str) -> dict[str, Any] | None:
    """The ``qc`` block of the prediction's batch record (``<case>.json`` beside it), when there is one.

    A record that is missing, unreadable or older than the checks gives ``None``: the columns stay
    empty rather than the evaluation failing.
    """
    import json

    record = pred_path.parent / f"{case}.json"
    try:
        block = json.loads(record.read_text()).get("qc")
    except (OSError, ValueError, AttributeError):
        return None
    return block if isinstance(block, dict) and "verdict" in block else None


def _quality_columns(quality: dict[str, Any] | None) -> dict[str, str]:
    from medswin.qc.core import QualityReport

    if quality is None:
        return {"qc": "", "qc_reason": ""}
    report = QualityReport.from_dict(quality)
    return {"qc": str(quality.get("verdict") or report.verdict), "qc_reason": report.reason}


def dice_with_background_official(pred: np.ndarray, ref: np.ndarray) -> float:
    """The Dice Swin-X2S's ``test.py`` reports for one case: MONAI ``DiceMetric()`` with its defaults.

    Background (0) counts as a class, classes absent from the reference are skipped
    (``ignore_empty=True``, so false-positive classes cost nothing), and the case's value is the
    mean over the remaining classes. For comparison with published numbers only; it is higher
    than the foreground Dice.

    Args:
        pred: predicted integer label map ``(X, Y, Z)``.
        ref: reference label map, same shape.
    """
    pred = np.asarray(pred).astype(np.int64, copy=False).ravel()
    ref = np.asarray(ref).astype(np.int64, copy=False).ravel()
    if pred.shape != ref.shape:
        raise MetricInputError(f"prediction shape {pred.shape} differs from reference shape {ref.shape}")
    size = int(max(pred.max(initial=0), ref.max(initial=0))) + 1
    in_ref = np.bincount(ref, minlength=size)
    in_pred = np.bincount(pred, minlength=size)
    both = np.bincount(ref[pred == ref], minlength=size)
    present = in_ref > 0
    return float(np.mean(2.0 * both[present] / (in_ref[present] + in_pred[present])))


def _unit(name: str, kind: str) -> str:
    if kind == "point" or name.endswith("_mm"):
        return "mm"
    if kind == "axis" or name.endswith("_deg"):
        return "deg"
    return ""


def _parameters(group: str) -> list[tuple[str, str]]:
    """``(parameter, kind)`` of every compared field of a group's result type (metadata ``kind``)."""
    return [(f.name, f.metadata["kind"]) for f in fields(_RESULT_TYPES[group]) if f.metadata.get("kind")]


def _centroids_mm(image: Image, array: np.ndarray, labels: Sequence[int]) -> dict[int, np.ndarray]:
    """LPS centroid (mm) of every label of ``labels`` present in ``array``."""
    from scipy import ndimage

    present = [v for v in labels if np.any(array == v)]
    if not present:
        return {}
    centres = ndimage.center_of_mass(np.ones(array.shape, dtype=np.uint8), array, present)
    affine = image.lps_affine
    return {v: affine[:3, :3] @ np.asarray(c) + affine[:3, 3] for v, c in zip(present, centres)}


def _measure(
    structure: X2SStructure, image: Image, anatomy: X2SAnatomy, centroids: dict[int, np.ndarray]
) -> FemurMorphometry | PelvisLandmarks | VertebraMorphometry | RibCentreline:
    """The morphometry result of one structure in one label image (raises when it cannot be measured)."""
    label = structure.labels[0]
    if structure.group == "femur":
        return femur_morphometry(image, label)
    if structure.group == "pelvis":
        return pelvis_landmarks(image, left=structure.labels[0], right=structure.labels[1])
    if structure.group == "vertebra":
        # The spine axis through the neighbours by name, not by value +-1 (which for C1 is the
        # background and for L6 of TotalSeg-all the first rib); else the patient's axis.
        order = anatomy.vertebrae
        i = order.index(label)
        cranial = order[i - 1] if i > 0 else None
        caudal = order[i + 1] if i + 1 < len(order) else None
        axis = SUPERIOR
        if cranial in centroids and caudal in centroids:
            axis = centroids[cranial] - centroids[caudal]
        return vertebra_morphometry(image, label, height_axis=axis)
    return rib_centreline(image, label)


def _reason(error: BaseException) -> str:
    return str(error) if isinstance(error, MedSwinError) else f"{type(error).__name__}: {error}"


def _structure_rows(
    structure: X2SStructure,
    status: str,
    reason: str = "",
    errors: Mapping[str, float] | None = None,
    pred_result: Any = None,
    ref_result: Any = None,
) -> list[dict[str, Any]]:
    rows = []
    for parameter, kind in _parameters(structure.group):
        row: dict[str, Any] = {
            "structure": structure.name,
            "group": structure.group,
            "parameter": parameter,
            "kind": kind,
            "unit": _unit(parameter, kind),
            "error": errors[parameter] if errors is not None else None,
            "reference_value": None,
            "predicted_value": None,
            "status": status,
            "reason": reason,
        }
        if kind == "scalar" and ref_result is not None:
            row["reference_value"] = float(getattr(ref_result, parameter))
            if pred_result is not None:
                row["predicted_value"] = float(getattr(pred_result, parameter))
        rows.append(row)
    return rows


def _morphometry(pred: Image, ref: Image, anatomy: X2SAnatomy) -> list[dict[str, Any]]:
    pred_array, ref_array = np.asarray(pred.array[0]), np.asarray(ref.array[0])
    in_ref = set(np.unique(ref_array).tolist())
    pred_centroids = _centroids_mm(pred, pred_array, anatomy.vertebrae)
    ref_centroids = _centroids_mm(ref, ref_array, anatomy.vertebrae)
    rows: list[dict[str, Any]] = []
    for structure in anatomy.structures():
        if not in_ref.intersection(structure.labels):
            continue  # the reference lacks it: nothing to compare
        try:
            ref_result = _measure(structure, ref, anatomy, ref_centroids)
        except Exception as error:  # a reference bone too cropped to measure is reported, not fatal
            log.debug("reference %s not measurable", structure.name, exc_info=True)
            rows += _structure_rows(structure, "reference_failed", f"reference: {_reason(error)}")
            continue
        try:
            pred_result = _measure(structure, pred, anatomy, pred_centroids)
        except Exception as error:  # a missing or degenerate predicted bone is a failure, never dropped
            log.debug("prediction %s not measurable", structure.name, exc_info=True)
            rows += _structure_rows(
                structure, "failed", f"prediction: {_reason(error)}", ref_result=ref_result
            )
            continue
        errors = pred_result.errors(ref_result)
        rows += _structure_rows(structure, "ok", "", errors, pred_result, ref_result)
    return rows


def _value(result: Any, parameter: str, kind: str) -> float | tuple[float, ...]:
    value = getattr(result, parameter)
    if kind == "scalar":
        return float(value)
    return tuple(float(v) for v in np.asarray(value).ravel())


def measure_x2s_structures(labels: Image, anatomy: X2SAnatomy) -> list[dict[str, Any]]:
    """The clinical parameters of every bone in one label image, with no reference (a prediction alone).

    The same measurements ``medswin x2s evaluate`` compares (:mod:`medswin.metrics.morphometry`,
    the same neighbours for the spine axis), for a viewer or a report on a new patient.

    Args:
        labels: label image ``(1, X, Y, Z)`` (e.g. :attr:`X2SPrediction.labels`).
        anatomy: which labels are which bones (:func:`anatomy_from_labels` of the model's labels).

    Returns:
        rows with the keys :data:`MEASUREMENT_COLUMNS`, in :meth:`X2SAnatomy.structures` order, for
        each structure with at least one of its labels present. ``value`` is a float for
        ``kind == "scalar"`` (mm or degrees, ``unit``), an LPS point ``(x, y, z)`` in mm for
        ``"point"`` and a unit direction for ``"axis"``; ``status`` is ``"ok"``, or ``"failed"``
        with ``value`` None and the ``reason`` (a structure too cropped or malformed to measure).
    """
    array = np.asarray(labels.array[0])
    present = set(np.unique(array).tolist())
    centroids = _centroids_mm(labels, array, anatomy.vertebrae)
    rows: list[dict[str, Any]] = []
    for structure in anatomy.structures():
        if not present.intersection(structure.labels):
            continue
        try:
            result = _measure(structure, labels, anatomy, centroids)
            status, reason = "ok", ""
        except Exception as error:  # a malformed bone is reported in its rows, the others are measured
            log.debug("%s not measurable", structure.name, exc_info=True)
            result, status, reason = None, "failed", _reason(error)
        for parameter, kind in _parameters(structure.group):
            rows.append(
                {
                    "structure": structure.name,
                    "group": structure.group,
                    "parameter": parameter,
                    "kind": kind,
                    "unit": _unit(parameter, kind),
                    "value": None if result is None else _value(result, parameter, kind),
                    "status": status,
                    "reason": reason,
                }
            )
    return rows


def evaluate_x2s_case(
    pred: Image,
    ref: Image,
    anatomy: X2SAnatomy,
    *,
    case: str | None = None,
    morphometry: bool = True,
) -> X2SCaseResult:
    """Overlap, surface distances and clinical-parameter errors of one Swin-X2S prediction.

    Args:
        pred: predicted label image ``(1, X, Y, Z)`` on the reference grid.
        ref: reference label image.
        anatomy: which labels are which bones (:func:`anatomy_from_labels`); every non-zero value
            in either image must be one of its labels.
        case: case id (default: the reference file name).
        morphometry: also measure the clinical parameters (seconds per femur; off for quick checks).

    Returns:
        an :class:`X2SCaseResult`: Dice (foreground), HD95 and ASSD (mm) per label present in
        either image, clDice per rib, morphometry error rows per structure of the reference.

    Raises:
        MetricInputError: the images are not on one grid, are not integer label images, or hold
            labels outside ``anatomy``.
    """
    base = evaluate_case(pred, ref, labels=anatomy.labels, case=case)
    pred_array, ref_array = np.asarray(pred.array[0]), np.asarray(ref.array[0])
    overlap = []
    for row in base.rows:
        if row["empty"] == "both":
            continue  # absent from both images: nothing to compare
        label = int(row["label"])
        group = anatomy.group_of(label)
        cl_dice = None
        if group == "rib":
            box = union_box(pred_array == label, ref_array == label) or ()  # crop: skeletons are slow
            cl_dice = centreline_dice(pred_array[box] == label, ref_array[box] == label)
        overlap.append(
            {
                "label": label,
                "name": anatomy.names[label],
                "group": group,
                "empty": row["empty"],
                "dice": row["dice"],
                "hd95": row["hd95"],
                "assd": row["assd"],
                "cl_dice": cl_dice,
            }
        )
    return X2SCaseResult(
        case=base.case,
        overlap=overlap,
        morphometry=_morphometry(pred, ref, anatomy) if morphometry else [],
        dice_with_background_official=dice_with_background_official(pred_array, ref_array),
        pred_path=base.pred_path,
        ref_path=base.ref_path,
    )


def _overlap_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "n": len(rows),
        "n_labels": len({row["label"] for row in rows}),
        "n_cases": len({row["case"] for row in rows}),
        "missed": sum(1 for row in rows if row["empty"] == "pred"),
        "false_positive": sum(1 for row in rows if row["empty"] == "ref"),
    }
    for metric in ("dice", "hd95", "assd"):
        entry[metric] = describe([row[metric] for row in rows])
    cl = [row["cl_dice"] for row in rows if row.get("cl_dice") is not None]
    if cl:
        entry["cl_dice"] = describe(cl)
    return entry


def _morphometry_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    by_structure: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        by_structure.setdefault((row["case"], row["structure"]), row)
    statuses = [row["status"] for row in by_structure.values()]
    parameters: dict[str, Any] = {}
    for parameter in dict.fromkeys(row["parameter"] for row in rows):
        mine = [row for row in rows if row["parameter"] == parameter]
        measured = [row["error"] for row in mine if row["status"] == "ok"]
        failed = sum(1 for row in mine if row["status"] == "failed")
        ranked = measured + [math.inf] * failed
        parameters[parameter] = {
            "kind": mine[0]["kind"],
            "unit": mine[0]["unit"],
            **describe(measured),
            "n_failed": failed,
            "n_reference_failed": sum(1 for row in mine if row["status"] == "reference_failed"),
            "median_failed_as_worst": float(np.median(ranked)) if ranked else None,
        }
    return {
        "n_structures": len(statuses),
        "n_ok": statuses.count("ok"),
        "n_failed": statuses.count("failed"),
        "n_reference_failed": statuses.count("reference_failed"),
        "failures": [
            {
                "case": row["case"],
                "structure": row["structure"],
                "status": row["status"],
                "reason": row["reason"],
            }
            for row in by_structure.values()
            if row["status"] != "ok"
        ],
        "parameters": parameters,
    }


def summarize_x2s(results: Iterable[X2SCaseResult]) -> dict[str, Any]:
    """Paper-style summary of many cases: per anatomy group overlap means and morphometry errors.

    Returns:
        ``{"n_cases", "n_evaluated", "n_failed", "failed": [{"case", "error", "pred", "ref"}],
        "overlap": {group: {"n", "n_labels", "n_cases", "missed", "false_positive", "dice", "hd95",
        "assd"[, "cl_dice"]}} (groups of :data:`GROUPS` present, "other", and "all"),
        "dice_per_case": {"foreground", "with_background_official"},
        "morphometry": {group: {"n_structures", "n_ok", "n_failed", "n_reference_failed",
        "failures", "parameters": {name: {"kind", "unit", "n", "mean", "median", "std", "min",
        "max", "n_failed", "n_reference_failed", "median_failed_as_worst"}}}}, "qc": {"n_recorded", "ok",
        "warn", "fail", "flagged"} (empty when no prediction has a batch record), "notes"}``; each
        statistic is over labels (or structures) and cases; distances in mm, angles in degrees.
    """
    results = list(results)
    failed = [r.failure() for r in results if not r.ok]
    good = [r for r in results if r.ok]
    overlap_rows = [{"case": r.case, **row} for r in good for row in r.overlap]
    morph_rows = [{"case": r.case, **row} for r in good for row in r.morphometry]
    overlap = {
        group: _overlap_summary([row for row in overlap_rows if row["group"] == group])
        for group in (*GROUPS, "other")
        if any(row["group"] == group for row in overlap_rows)
    }
    if overlap_rows:
        overlap["all"] = _overlap_summary(overlap_rows)
    per_case = [float(np.mean([row["dice"] for row in r.overlap])) for r in good if r.overlap]
    morphometry = {
        group: _morphometry_summary([row for row in morph_rows if row["group"] == group])
        for group in GROUPS
        if any(row["group"] == group for row in morph_rows)
    }
    return {
        "n_cases": len(results),
        "n_evaluated": len(good),
        "n_failed": len(failed),
        "failed": failed,
        "overlap": overlap,
        "dice_per_case": {
            "foreground": describe(per_case),
            "with_background_official": describe(
                [r.dice_with_background_official for r in good if r.dice_with_background_official is not None]
            ),
        },
        "morphometry": morphometry,
        "qc": _quality_summary(good),
        "notes": list(NOTES),
    }


def _quality_summary(results: list[X2SCaseResult]) -> dict[str, Any]:
    """Cases per recorded verdict and the flagged ones with their reason (empty without records)."""
    recorded = [(r.case, _quality_columns(r.quality)) for r in results if r.quality is not None]
    counts = {v: sum(c["qc"] == v for _, c in recorded) for v in ("ok", "warn", "fail")}
    flagged = [{"case": case, **c} for case, c in recorded if c["qc"] != "ok"]
    return {"n_recorded": len(recorded), **counts, "flagged": flagged} if recorded else {}


def write_x2s_csvs(results: Iterable[X2SCaseResult], path: str | Path) -> tuple[Path, Path]:
    """Write the overlap CSV at ``path`` and the morphometry CSV beside it, atomically.

    ``metrics.csv`` holds :data:`OVERLAP_COLUMNS` (one row per case and label),
    ``metrics_morphometry.csv`` holds :data:`MORPHOMETRY_COLUMNS` (one row per case, structure and
    parameter; ``error`` is blank unless ``status`` is "ok"). Failed cases have no rows (see the
    summary). Empty cells mean "not applicable".

    Returns:
        ``(overlap_csv, morphometry_csv)``.
    """
    results = [r for r in results if r.ok]
    path = Path(path)
    morph_path = path.with_name(f"{path.stem}_morphometry.csv")
    write_atomic(
        path,
        csv_text(
            ({"case": r.case, **row, **_quality_columns(r.quality)} for r in results for row in r.overlap),
            OVERLAP_COLUMNS,
        ),
    )
    write_atomic(
        morph_path,
        csv_text(({"case": r.case, **row} for r in results for row in r.morphometry), MORPHOMETRY_COLUMNS),
    )
    return path, morph_path


def _evaluate_files(
    case: str, pred_path: Path, ref_path: Path, anatomy: X2SAnatomy, morphometry: bool
) -> X2SCaseResult:
    from medswin.io.readers import read_image

    try:
        pred = read_image(pred_path, kind="label")
        ref = read_image(ref_path, kind="label")
        result = evaluate_x2s_case(pred, ref, anatomy, case=case, morphometry=morphometry)
        result.quality = recorded_quality(pred_path, case)
        return result
    except MedSwinError as error:
        return X2SCaseResult.failed(case, error, str(pred_path), str(ref_path))
    except Exception as error:  # one unreadable case must not stop a batch; it is listed as failed
        log.debug("case %s failed", case, exc_info=True)
        return X2SCaseResult.failed(case, f"{type(error).__name__}: {error}", str(pred_path), str(ref_path))


def evaluate_x2s_folders(
    pred_dir: str | Path,
    ref_dir: str | Path,
    labels: Mapping[int, str] | Mapping[str, str],
    output_csv: str | Path,
    *,
    anatomy: X2SAnatomy | None = None,
    morphometry: bool = True,
    cases: Collection[str] | None = None,
) -> dict[str, Any]:
    """Evaluate a folder of Swin-X2S predictions against a folder of references and write the tables.

    Files pair by case name (:func:`medswin.metrics.pairing.pair_cases`, as ``medswin evaluate``). Writes ``output_csv`` (overlap), ``<stem>_morphometry.csv`` (see
    :func:`write_x2s_csvs`) and ``<stem>_summary.json`` (:func:`summarize_x2s` plus
    ``unpaired_predictions``, ``anatomy`` and ``files``), each atomically.

    Args:
        pred_dir: folder of predicted label volumes.
        ref_dir: folder of reference label volumes.
        labels: the dataset's label map ``{value: name}`` (a manifest's ``labels``).
        output_csv: the overlap CSV to write.
        anatomy: which labels are which bones (default: :func:`anatomy_from_labels` of ``labels``).
        morphometry: also measure the clinical parameters.
        cases: evaluate only these case ids (e.g. a held-out fold; the reference folder may hold
            every case); a listed case without a prediction is still a failed case.

    Returns:
        the summary. A reference without a prediction, an unreadable file and a grid mismatch are
        failed cases, listed under ``failed``; a prediction without a reference is listed under
        ``unpaired_predictions``.

    Raises:
        MedSwinError: a folder is missing, a case has two files, or the reference folder is empty.
    """
    from medswin.metrics.pairing import LABEL_ENDINGS, pair_cases

    anatomy = anatomy if anatomy is not None else anatomy_from_labels(labels)
    pairing = pair_cases(Path(pred_dir), Path(ref_dir))
    if cases is not None:
        chosen = set(cases)
        unknown = sorted(chosen - set(pairing.pairs) - set(pairing.missing_predictions))
        if unknown:
            raise MedSwinError(f"{ref_dir}: no reference file for case(s) {', '.join(unknown[:5])}")
        pairing = replace(
            pairing,
            pairs={c: files for c, files in pairing.pairs.items() if c in chosen},
            missing_predictions=[c for c in pairing.missing_predictions if c in chosen],
            missing_references=[c for c in pairing.missing_references if c in chosen],
        )
    if not pairing.pairs and not pairing.missing_predictions:
        raise MedSwinError(f"{ref_dir}: no reference label files ({', '.join(LABEL_ENDINGS)}) to evaluate")
    results = [
        _evaluate_files(case, pred, ref, anatomy, morphometry) for case, (pred, ref) in pairing.pairs.items()
    ]
    results += [
        X2SCaseResult.failed(case, "no prediction file for this reference", None, None)
        for case in pairing.missing_predictions
    ]
    results.sort(key=lambda r: r.case)
    overlap_csv, morph_csv = write_x2s_csvs(results, output_csv)
    summary_json = summary_path_for(output_csv)
    summary = summarize_x2s(results)
    summary["unpaired_predictions"] = pairing.missing_references
    summary["anatomy"] = {
        "labels": {str(v): anatomy.names[v] for v in anatomy.labels},
        "groups": {str(v): anatomy.group_of(v) for v in anatomy.labels},
    }
    summary["files"] = {
        "overlap_csv": str(overlap_csv),
        "morphometry_csv": str(morph_csv),
        "summary_json": str(summary_json),
    }
    write_summary_json(summary, summary_json)
    return summary


def _number(value: Any, digits: int) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.{digits}f}"


def format_x2s_table(summary: Mapping[str, Any], max_failures: int = 20) -> str:
    """The summary of :func:`summarize_x2s` as a plain-text table for a terminal.

    Args:
        summary: from :func:`summarize_x2s` or :func:`evaluate_x2s_folders`.
        max_failures: structure failures listed by name (the rest are counted).
    """
    lines = [
        f"Swin-X2S evaluation: {summary['n_cases']} cases, {summary['n_evaluated']} evaluated, "
        f"{summary['n_failed']} failed",
        "",
        f"{'group':<9} {'labels':>6} {'rows':>5} {'Dice':>7} {'HD95 mm':>8} {'ASSD mm':>8} {'clDice':>7} "
        f"{'missed':>6} {'FP':>4}",
    ]
    for group, entry in summary.get("overlap", {}).items():
        cl = entry.get("cl_dice", {}).get("mean")
        lines.append(
            f"{group:<9} {entry['n_labels']:>6} {entry['n']:>5} {_number(entry['dice']['mean'], 4):>7} "
            f"{_number(entry['hd95']['mean'], 2):>8} {_number(entry['assd']['mean'], 2):>8} "
            f"{_number(cl, 4):>7} {entry['missed']:>6} {entry['false_positive']:>4}"
        )
    per_case = summary.get("dice_per_case", {})
    if per_case:
        lines.append(
            f"Dice per case: foreground {_number(per_case['foreground']['mean'], 4)}, "
            f"with background (official style, comparison only) "
            f"{_number(per_case['with_background_official']['mean'], 4)}"
        )
    morphometry = summary.get("morphometry", {})
    if morphometry:
        lines += [
            "",
            f"{'group':<9} {'parameter':<26} {'unit':<4} {'n':>4} {'failed':>6} {'mean':>8} {'median':>8} "
            f"{'med*':>8}",
        ]
        for group, entry in morphometry.items():
            for parameter, stats in entry["parameters"].items():
                lines.append(
                    f"{group:<9} {parameter:<26} {stats['unit']:<4} {stats['n']:>4} {stats['n_failed']:>6} "
                    f"{_number(stats['mean'], 2):>8} {_number(stats['median'], 2):>8} "
                    f"{_number(stats['median_failed_as_worst'], 2):>8}"
                )
        lines.append("med*: median with failures ranked as infinite errors")
    quality = summary.get("qc") or {}
    if quality:
        lines += [
            "",
            f"quality (from the prediction records): {quality['ok']} ok, {quality['warn']} warn, {quality['fail']} fail",
        ]
        lines += [f"  {q['qc']} {q['case']}: {q['qc_reason']}" for q in quality["flagged"][:max_failures]]
    for failure in summary.get("failed", []):
        lines.append(f"failed case {failure['case']}: {failure['error']}")
    failures = [(group, f) for group, entry in morphometry.items() for f in entry["failures"]]
    for group, failure in failures[:max_failures]:
        lines.append(
            f"{group} {failure['structure']} of {failure['case']} {failure['status']}: {failure['reason']}"
        )
    if len(failures) > max_failures:
        lines.append(f"... and {len(failures) - max_failures} more structure failures (see the summary JSON)")
    if summary.get("notes"):
        lines += [
            "",
            *(textwrap.fill(f"note: {note}", width=100, subsequent_indent="  ") for note in summary["notes"]),
        ]
    return "\n".join(lines) + "\n"
