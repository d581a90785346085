"""BraTS tumour regions and the challenge's lesion-wise Dice and HD95.

Labels (BraTS 2023 naming; GLI, SSA, PED): 1 NETC (non-enhancing tumour core, formerly NCR),
2 SNFH (surrounding FLAIR hyperintensity, formerly ED), 3 ET (enhancing tumour); BraTS 2024 GLI
(post-treatment) adds 4 RC (resection cavity). Regions: WT = {1, 2, 3} (RC excluded),
TC = {1, 3}, ET = {3}, and optionally RC = {4}.

Lesion-wise metrics follow the BraTS 2023 evaluation code (public repository
rachitsaluja/BraTS-2023-Metrics, ``eval.py``; the BraTS 2024 GLI script ``metrics_GLI.py`` in
rachitsaluja/BraTS-2024-Metrics uses the same scheme with other thresholds):

1. reference lesions are the 26-connected components of the region mask after merging: the mask is
   dilated ``dilation_iterations`` times with the 18-connected structuring element
   (``generate_binary_structure(3, 2)``), and reference voxels that fall in one connected
   component of the dilated mask form one lesion;
2. predicted lesions are the 26-connected components of the predicted region (not dilated);
3. a predicted component matches a reference lesion when it overlaps that lesion dilated again
   ``dilation_iterations`` times; each lesion is scored against the union of its matches: Dice,
   and HD95 as DeepMind's area-weighted robust Hausdorff (:mod:`medswin.metrics.surfels`);
   a lesion with no match (false negative) scores Dice 0 and HD95 ``penalty_mm`` (374);
4. predicted components matching no reference lesion are false positives, each scored Dice 0 and
   HD95 ``penalty_mm``;
5. reference lesions whose volume (voxels × voxel volume, mm³) is **not above** the threshold are
   left out of the score (their matched predictions are not false positives either);
6. lesion-wise Dice = Σ Dice(counted lesions) / (counted lesions + false positives), HD95 alike
   with 374 per false positive; with nothing to count (both empty) Dice is 1 and HD95 is 0.

Settings (:data:`LESION_WISE_SETTINGS`): BraTS 2023 GLI, SSA and PED dilate 3 times and drop
lesions ≤ 50 mm³; MEN dilates once (50); MET once (2). BraTS 2024 GLI dilates 3 times with a
20 mm³ threshold, 10 for ET — and for RC, because the script never resets the threshold after ET.
Not reproduced: the 2024 script's extra merging of lesions that touch across NETC/SNFH/ET/RC
(it affects the per-label NETC/SNFH/ET/RC lesion counts, not WT/TC).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from medswin.errors import MetricInputError
from medswin.metrics._checks import as_mask_pair, as_spacing
from medswin.metrics.brats_settings import (
    BRATS_LABELS,
    BRATS_PENALTY_MM,
    BRATS_REGIONS,
    LESION_WISE_SETTINGS,
    LesionWiseSettings,
)
from medswin.metrics.multilabel import LabelMetrics, binary_metrics
from medswin.metrics.surfels import robust_hausdorff

__all__ = [
    "BRATS_LABELS",
    "BRATS_PENALTY_MM",
    "BRATS_REGIONS",
    "LESION_WISE_SETTINGS",
    "BratsRegionMetrics",
    "Lesion",
    "LesionWiseResult",
    "LesionWiseSettings",
    "brats_metrics",
    "brats_regions",
    "lesion_wise_metrics",
    "region_mask",
]


def brats_regions(include_rc: bool = False) -> dict[str, tuple[int, ...]]:
    """The evaluated regions WT, TC, ET (and RC, the 2024 resection cavity, when ``include_rc``)."""
    names = ("WT", "TC", "ET", "RC") if include_rc else ("WT", "TC", "ET")
    return {name: BRATS_REGIONS[name] for name in names}


def region_mask(labels: np.ndarray, values: Sequence[int]) -> np.ndarray:
    """Boolean mask of the voxels whose label is one of ``values``; shape of ``labels``."""
    return np.isin(np.asarray(labels), np.asarray(values))


@dataclass(frozen=True)
class Lesion:
    """One reference lesion and how it was scored.

    Attributes:
        ref_id: lesion number (after merging by dilation), 1-based.
        volume_mm3: reference lesion volume.
        pred_ids: predicted components (1-based numbers) matched to it.
        dice, hd95: the lesion's scores (a miss: 0 and the penalty).
        counted: volume above the threshold, so it enters the score.
    """

    ref_id: int
    volume_mm3: float
    pred_ids: tuple[int, ...]
    dice: float
    hd95: float
    counted: bool


@dataclass(frozen=True)
class LesionWiseResult:
    """Lesion-wise scores of one region of one case.

    Attributes:
        dice, hd95: the challenge scores (false positives and misses count as 0 / ``penalty_mm``).
        n_tp: counted reference lesions with at least one matched prediction.
        n_fn: counted reference lesions with none.
        n_fp: predicted components matching no reference lesion.
        lesions: every reference lesion, counted or not.
    """

    dice: float
    hd95: float
    n_tp: int
    n_fn: int
    n_fp: int
    lesions: tuple[Lesion, ...]


def _components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Connected components with full connectivity (26 in 3D, 8 in 2D), numbered from 1."""
    structure = ndimage.generate_binary_structure(mask.ndim, mask.ndim)
    labelled, count = ndimage.label(mask, structure=structure)
    return labelled, int(count)


def _dilate(mask: np.ndarray, iterations: int) -> np.ndarray:
    if iterations <= 0:
        return mask
    return ndimage.binary_dilation(
        mask, structure=ndimage.generate_binary_structure(mask.ndim, 2), iterations=iterations
    )


def _grow(box: tuple[slice, ...], by: int, shape: tuple[int, ...]) -> tuple[slice, ...]:
    return tuple(slice(max(s.start - by, 0), min(s.stop + by, n)) for s, n in zip(box, shape))


def _merge(boxes: Sequence[tuple[slice, ...]]) -> tuple[slice, ...]:
    return tuple(
        slice(min(b[a].start for b in boxes), max(b[a].stop for b in boxes)) for a in range(len(boxes[0]))
    )


def _merged_reference_lesions(ref: np.ndarray, iterations: int) -> tuple[np.ndarray, int]:
    """Reference lesions: reference voxels numbered by the connected component of the dilated reference."""
    lesions = np.zeros(ref.shape, dtype=np.int32)
    boxes = ndimage.find_objects(ref.astype(np.uint8))
    if not boxes or boxes[0] is None:
        return lesions, 0
    box = _grow(boxes[0], iterations + 1, ref.shape)
    dilated_components, count = _components(_dilate(ref[box], iterations))
    lesions[box] = np.where(ref[box], dilated_components, 0)
    return lesions, count


def lesion_wise_metrics(
    pred: np.ndarray,
    ref: np.ndarray,
    spacing: float | Sequence[float] | np.ndarray,
    settings: LesionWiseSettings | None = None,
    region: str = "",
) -> LesionWiseResult:
    """Lesion-wise Dice and HD95 of one binary region, with the BraTS rules (module docstring).

    Args:
        pred: predicted region mask ``(X, Y, Z)``.
        ref: reference region mask, same shape.
        spacing: voxel size in mm (BraTS: 1 mm isotropic).
        settings: dilation, threshold and penalty (default: BraTS 2023 GLI).
        region: region name, to pick a per-region threshold from ``settings``.
    """
    pred, ref, spacing_mm = as_mask_pair(pred, ref, spacing)
    settings = settings or LESION_WISE_SETTINGS["BraTS-GLI-2023"]
    threshold = settings.threshold_for(region)
    voxel_mm3 = float(np.prod(spacing_mm))
    iterations = int(settings.dilation_iterations)

    lesions, n_lesions = _merged_reference_lesions(ref, iterations)
    pred_components, n_pred = _components(pred)
    lesion_boxes = ndimage.find_objects(lesions)
    pred_boxes = ndimage.find_objects(pred_components)

    scored: list[Lesion] = []
    matched_any: set[int] = set()
    for lesion_id in range(1, n_lesions + 1):
        box = _grow(lesion_boxes[lesion_id - 1], iterations + 1, ref.shape)
        lesion = lesions[box] == lesion_id
        reach = _dilate(lesion, iterations)
        matched = tuple(int(v) for v in np.unique(pred_components[box][reach]) if v != 0)
        matched_any.update(matched)
        volume = float(np.count_nonzero(lesion)) * voxel_mm3
        if matched:
            both = _merge([lesion_boxes[lesion_id - 1], *(pred_boxes[m - 1] for m in matched)])
            lesion_crop = lesions[both] == lesion_id
            pred_crop = np.isin(pred_components[both], matched)
            overlap = np.count_nonzero(lesion_crop & pred_crop)
            dice = 2.0 * overlap / (np.count_nonzero(lesion_crop) + np.count_nonzero(pred_crop))
            hd95 = robust_hausdorff(
                pred_crop, lesion_crop, spacing_mm, 95.0, empty_distance_mm=settings.penalty_mm
            )
        else:
            dice, hd95 = 0.0, float(settings.penalty_mm)
        scored.append(Lesion(lesion_id, volume, matched, float(dice), float(hd95), volume > threshold))

    n_fp = n_pred - len(matched_any)
    counted = [lesion for lesion in scored if lesion.counted]
    denominator = len(counted) + n_fp
    if denominator == 0:
        dice_score, hd95_score = 1.0, 0.0
    else:
        dice_score = sum(lesion.dice for lesion in counted) / denominator
        hd95_score = (sum(lesion.hd95 for lesion in counted) + n_fp * settings.penalty_mm) / denominator
    n_tp = sum(1 for lesion in counted if lesion.pred_ids)
    return LesionWiseResult(
        dice=float(dice_score),
        hd95=float(hd95_score),
        n_tp=n_tp,
        n_fn=len(counted) - n_tp,
        n_fp=n_fp,
        lesions=tuple(scored),
    )


@dataclass(frozen=True)
class BratsRegionMetrics:
    """Everything measured for one BraTS region of one case.

    Attributes:
        region: "WT", "TC", "ET" or "RC".
        metrics: the standard metrics of the whole region (:class:`LabelMetrics`, MONAI surface
            definitions; ``penalty_mm`` as the empty-mask distance).
        legacy_hd95: the challenge's full-region ("legacy") HD95, DeepMind's area-weighted
            definition; 0 if both empty, ``penalty_mm`` if one is.
        lesion_wise: the lesion-wise scores.
    """

    region: str
    metrics: LabelMetrics
    legacy_hd95: float
    lesion_wise: LesionWiseResult

    def as_row(self) -> dict[str, int | str | float]:
        """Flat table row: the standard columns plus ``legacy_hd95`` and ``lesion_*`` columns."""
        row = self.metrics.as_dict()
        row.update(
            legacy_hd95=self.legacy_hd95,
            lesion_dice=self.lesion_wise.dice,
            lesion_hd95=self.lesion_wise.hd95,
            lesion_tp=self.lesion_wise.n_tp,
            lesion_fn=self.lesion_wise.n_fn,
            lesion_fp=self.lesion_wise.n_fp,
        )
        return row

    def as_dict(self) -> dict[str, object]:
        return {
            "region": self.region,
            **self.as_row(),
            "lesions": [asdict(lesion) for lesion in self.lesion_wise.lesions],
        }


def brats_metrics(
    pred: np.ndarray,
    ref: np.ndarray,
    spacing: float | Sequence[float] | np.ndarray = 1.0,
    include_rc: bool = False,
    settings: LesionWiseSettings | None = None,
    nsd_tolerance_mm: float = 2.0,
) -> list[BratsRegionMetrics]:
    """Standard, legacy and lesion-wise metrics of the BraTS regions of a label-map pair.

    Args:
        pred: predicted label map ``(X, Y, Z)`` with BraTS 2023 labels (1 NETC, 2 SNFH, 3 ET[, 4 RC]).
        ref: reference label map, same shape.
        spacing: voxel size in mm (BraTS data: 1 mm isotropic).
        include_rc: also evaluate the 2024 resection cavity (label 4) as region RC.
        settings: lesion-wise parameters (default: BraTS 2023 GLI; see :data:`LESION_WISE_SETTINGS`).
        nsd_tolerance_mm: NSD tolerance for the standard metrics.

    Raises:
        MetricInputError: a label outside {0, 1, 2, 3} (or {0..4} with ``include_rc``).
    """
    pred = np.asarray(pred)
    ref = np.asarray(ref)
    if pred.shape != ref.shape:
        raise MetricInputError(f"prediction shape {pred.shape} differs from reference shape {ref.shape}")
    allowed = {0, 1, 2, 3, 4} if include_rc else {0, 1, 2, 3}
    for what, array in (("prediction", pred), ("reference", ref)):
        unknown = sorted(set(np.unique(array).tolist()) - allowed)
        if unknown:
            raise MetricInputError(
                f"{what} has labels {unknown} outside the BraTS labels {sorted(allowed)}"
                + ("" if include_rc else " (use include_rc for the 2024 resection cavity, label 4)")
            )
    spacing_mm = as_spacing(spacing, pred.ndim)
    settings = settings or LESION_WISE_SETTINGS["BraTS-GLI-2023"]
    results = []
    for name, values in brats_regions(include_rc).items():
        pred_region, ref_region = region_mask(pred, values), region_mask(ref, values)
        standard = binary_metrics(
            pred_region,
            ref_region,
            spacing_mm,
            label=name,
            nsd_tolerance_mm=nsd_tolerance_mm,
            empty_distance_mm=settings.penalty_mm,
        )
        legacy = robust_hausdorff(
            pred_region, ref_region, spacing_mm, 95.0, empty_distance_mm=settings.penalty_mm
        )
        lesion_wise = lesion_wise_metrics(pred_region, ref_region, spacing_mm, settings, region=name)
        results.append(BratsRegionMetrics(name, standard, legacy, lesion_wise))
    return results
