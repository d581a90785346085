from __future__ import annotations

import numpy as np
import pytest
from metric_shapes import box

from medswin.errors import MetricInputError
from medswin.metrics import (
    BRATS_PENALTY_MM,
    LESION_WISE_SETTINGS,
    LesionWiseSettings,
    brats_metrics,
    brats_regions,
    lesion_wise_metrics,
    region_mask,
)

SHAPE = (40, 40, 20)
GLI_2023 = LESION_WISE_SETTINGS["BraTS-GLI-2023"]


def cube(lo: tuple[int, int, int], size: int | tuple[int, int, int]) -> np.ndarray:
    sizes = (size,) * 3 if isinstance(size, int) else size
    return box(SHAPE, lo, tuple(a + s for a, s in zip(lo, sizes)))


def test_regions_follow_the_2023_labels_and_2024_resection_cavity():
    assert brats_regions() == {"WT": (1, 2, 3), "TC": (1, 3), "ET": (3,)}
    assert brats_regions(include_rc=True)["RC"] == (4,)
    labels = np.array([0, 1, 2, 3, 4])
    assert region_mask(labels, brats_regions()["WT"]).tolist() == [False, True, True, True, False]
    assert region_mask(labels, brats_regions()["TC"]).tolist() == [False, True, False, True, False]
    assert region_mask(labels, brats_regions()["ET"]).tolist() == [False, False, False, True, False]


def test_hit_miss_small_and_false_positive_lesions_score_as_the_challenge():
    big_hit, big_missed, small = (
        cube((5, 5, 5), 4),
        cube((25, 5, 5), 4),
        cube((5, 25, 5), 3),
    )  # 64, 64, 27 voxels
    ref = big_hit | big_missed | small
    pred = big_hit | small | cube((25, 25, 12), 3)  # the last one touches no reference lesion
    result = lesion_wise_metrics(pred, ref, 1.0, GLI_2023)
    assert (result.n_tp, result.n_fn, result.n_fp) == (1, 1, 1)
    assert result.dice == pytest.approx((1.0 + 0.0) / 3)  # counted lesions + false positives
    assert result.hd95 == pytest.approx((0.0 + 374.0 + 374.0) / 3)
    by_volume = sorted((lesion.volume_mm3, lesion.counted, lesion.dice) for lesion in result.lesions)
    assert by_volume == [(27.0, False, 1.0), (64.0, True, 0.0), (64.0, True, 1.0)]


def test_nearby_reference_lesions_merge_through_dilation():
    ref = cube((5, 5, 5), 4) | cube((12, 5, 5), 4)  # a 3-voxel gap
    merged = lesion_wise_metrics(ref, ref, 1.0, GLI_2023)  # dilated 3 times: one lesion
    assert len(merged.lesions) == 1 and merged.lesions[0].volume_mm3 == 128.0
    separate = lesion_wise_metrics(ref, ref, 1.0, LESION_WISE_SETTINGS["BraTS-MEN-2023"])  # once: two
    assert len(separate.lesions) == 2
    assert merged.dice == separate.dice == 1.0


def test_a_prediction_near_a_lesion_is_matched_through_the_dilated_reference():
    ref = cube((5, 5, 5), 4)
    pred = cube((10, 5, 5), 4)  # no overlap, one voxel gap: inside the 3-voxel reach
    matched = lesion_wise_metrics(pred, ref, 1.0, GLI_2023)
    assert (matched.n_tp, matched.n_fn, matched.n_fp) == (1, 0, 0)
    assert matched.dice == 0.0 and 0 < matched.hd95 < 10
    unmatched = lesion_wise_metrics(pred, ref, 1.0, LesionWiseSettings(dilation_iterations=0))
    assert (unmatched.n_tp, unmatched.n_fn, unmatched.n_fp) == (0, 1, 1)
    assert unmatched.hd95 == BRATS_PENALTY_MM


def test_volume_threshold_is_in_mm3_and_exclusive():
    lesion = cube((5, 5, 5), (5, 5, 2))  # 50 voxels, missed
    nothing = np.zeros(SHAPE, bool)
    at_threshold = lesion_wise_metrics(nothing, lesion, 1.0, GLI_2023)
    assert (at_threshold.dice, at_threshold.hd95, at_threshold.n_fn) == (
        1.0,
        0.0,
        0,
    )  # ≤ 50 mm³ is not counted
    thick_voxels = lesion_wise_metrics(nothing, lesion, (1.0, 1.0, 2.0), GLI_2023)  # 100 mm³
    assert (thick_voxels.dice, thick_voxels.hd95, thick_voxels.n_fn) == (0.0, 374.0, 1)


def test_2024_thresholds_apply_per_region():
    settings = LESION_WISE_SETTINGS["BraTS-GLI-2024"]
    assert settings.threshold_for("WT") == 20.0
    assert settings.threshold_for("ET") == settings.threshold_for("RC") == 10.0
    lesion = cube((5, 5, 5), (3, 3, 2))  # 18 mm³, missed: counted for ET only
    nothing = np.zeros(SHAPE, bool)
    assert lesion_wise_metrics(nothing, lesion, 1.0, settings, region="WT").n_fn == 0
    assert lesion_wise_metrics(nothing, lesion, 1.0, settings, region="ET").n_fn == 1


def tumour(centre_shift: int = 0, with_core: bool = True) -> np.ndarray:
    labels = np.zeros(SHAPE, np.uint8)
    x = 10 + centre_shift
    labels[box(SHAPE, (x, 10, 4), (x + 16, 26, 16))] = 2  # SNFH
    labels[box(SHAPE, (x + 4, 14, 7), (x + 12, 22, 13))] = 3  # ET
    if with_core:
        labels[box(SHAPE, (x + 6, 16, 9), (x + 10, 20, 11))] = 1  # NETC
    return labels


def test_brats_metrics_report_every_region_with_standard_and_lesion_columns():
    ref = tumour()
    pred = tumour(with_core=False)  # the core predicted as enhancing
    rows = {region.region: region for region in brats_metrics(pred, ref, 1.0)}
    assert list(rows) == ["WT", "TC", "ET"]
    assert rows["WT"].metrics.dice == 1.0 and rows["WT"].lesion_wise.dice == 1.0
    assert rows["TC"].metrics.dice == 1.0  # NETC and ET are both tumour core
    et_ref, et_pred = 6 * 8 * 8 - 4 * 4 * 2, 6 * 8 * 8
    assert rows["ET"].metrics.dice == pytest.approx(2 * et_ref / (et_ref + et_pred))
    row = rows["ET"].as_row()
    assert {
        "dice",
        "hd95",
        "legacy_hd95",
        "lesion_dice",
        "lesion_hd95",
        "lesion_tp",
        "lesion_fn",
        "lesion_fp",
    } <= set(row)


def test_empty_regions_follow_the_challenge_convention():
    ref = tumour(with_core=False)
    pred = ref.copy()
    pred[pred == 3] = 2  # enhancing tumour missed entirely
    rows = {region.region: region for region in brats_metrics(pred, ref, 1.0)}
    et = rows["ET"]
    assert et.metrics.empty == "pred" and et.metrics.dice == 0.0
    assert et.metrics.hd95 == et.legacy_hd95 == 374.0
    assert (et.lesion_wise.dice, et.lesion_wise.hd95, et.lesion_wise.n_fn) == (0.0, 374.0, 1)
    nothing = np.zeros(SHAPE, np.uint8)
    (wt, _, _) = brats_metrics(nothing, nothing, 1.0)
    assert (wt.metrics.dice, wt.metrics.hd95, wt.legacy_hd95, wt.lesion_wise.dice, wt.lesion_wise.hd95) == (
        1,
        0,
        0,
        1,
        0,
    )


def test_resection_cavity_is_an_option_and_unknown_labels_fail():
    ref = tumour()
    ref[box(SHAPE, (30, 30, 2), (36, 36, 8))] = 4
    with pytest.raises(MetricInputError, match="resection cavity"):
        brats_metrics(ref, ref, 1.0)
    rows = brats_metrics(ref, ref, 1.0, include_rc=True, settings=LESION_WISE_SETTINGS["BraTS-GLI-2024"])
    assert [row.region for row in rows] == ["WT", "TC", "ET", "RC"]
    assert rows[3].metrics.vol_ref_ml == pytest.approx(6 * 6 * 6 / 1000)
    assert rows[0].metrics.vol_ref_ml == pytest.approx(16 * 16 * 12 / 1000)  # WT excludes the cavity
    ref[0, 0, 0] = 7
    with pytest.raises(MetricInputError, match=r"\[7\]"):
        brats_metrics(ref, ref, 1.0, include_rc=True)
