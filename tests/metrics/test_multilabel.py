from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest
import torch
from metric_shapes import SPACING, blob, box
from monai.metrics import compute_average_surface_distance, compute_hausdorff_distance, compute_surface_dice

from medswin.errors import MetricInputError
from medswin.metrics import METRIC_COLUMNS, LabelMetrics, binary_metrics, image_diagonal_mm, label_metrics

SHAPE = (40, 34, 14)


def random_label_map(rng: np.random.Generator, labels: int = 4) -> np.ndarray:
    out = np.zeros(SHAPE, dtype=np.uint8)
    for value in range(1, labels + 1):
        out[blob(rng, SHAPE, fraction=0.12, sigma=2.0)] = value
    return out


def test_all_labels_equal_monai_with_one_hot_inputs(rng):
    pred, ref = random_label_map(rng), random_label_map(rng)
    results = label_metrics(pred, ref, SPACING, jobs=2)
    assert [m.label for m in results] == [1, 2, 3, 4]
    values = np.arange(1, 5)[:, None, None, None]
    p = torch.from_numpy(pred[None] == values)[None].float()
    r = torch.from_numpy(ref[None] == values)[None].float()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hd95 = compute_hausdorff_distance(p, r, include_background=True, percentile=95, spacing=SPACING)[0]
        assd = compute_average_surface_distance(
            p, r, include_background=True, symmetric=True, spacing=SPACING
        )[0]
        nsd = compute_surface_dice(p, r, [2.0] * 4, include_background=True, spacing=SPACING)[0]
    for i, metrics in enumerate(results):
        assert metrics.hd95 == pytest.approx(float(hd95[i]), abs=1e-3)
        assert metrics.assd == pytest.approx(float(assd[i]), abs=1e-3)
        assert metrics.nsd == pytest.approx(float(nsd[i]), abs=1e-6)


def test_label_engine_equals_the_binary_function_per_label(rng):
    pred, ref = random_label_map(rng), random_label_map(rng)
    for metrics in label_metrics(pred, ref, SPACING, jobs=1):
        alone = binary_metrics(pred == metrics.label, ref == metrics.label, SPACING, label=metrics.label)
        assert dataclasses.asdict(alone) == pytest.approx(dataclasses.asdict(metrics))


def test_threads_do_not_change_results(rng):
    pred, ref = random_label_map(rng), random_label_map(rng)
    assert label_metrics(pred, ref, SPACING, jobs=1) == label_metrics(pred, ref, SPACING, jobs=3)


def test_every_row_has_every_column_and_volumes_in_ml():
    ref = np.zeros(SHAPE, np.uint8)
    pred = np.zeros(SHAPE, np.uint8)
    ref[box(SHAPE, (5, 5, 2), (15, 15, 6))] = 1  # 400 voxels
    pred[box(SHAPE, (5, 5, 2), (15, 15, 7))] = 1  # 500 voxels
    (metrics,) = label_metrics(pred, ref, SPACING)
    assert set(METRIC_COLUMNS) <= set(metrics.as_dict())
    voxel_ml = 0.8 * 1.3 * 2.5 / 1000
    assert metrics.vol_ref_ml == pytest.approx(400 * voxel_ml)
    assert metrics.vol_pred_ml == pytest.approx(500 * voxel_ml)
    assert metrics.vol_diff_ml == pytest.approx(100 * voxel_ml)
    assert metrics.abs_vol_diff_ml == pytest.approx(100 * voxel_ml)
    assert metrics.rel_vol_diff == pytest.approx(0.25)
    assert metrics.hd == pytest.approx(2.5)
    assert metrics.empty == ""


def test_empty_cases_of_a_label_map_are_flagged_and_valued():
    ref = np.zeros(SHAPE, np.uint8)
    pred = np.zeros(SHAPE, np.uint8)
    ref[box(SHAPE, (2, 2, 2), (8, 8, 5))] = 1  # label 1 only in the reference: missed
    pred[box(SHAPE, (20, 20, 2), (26, 26, 5))] = 2  # label 2 only in the prediction: false positive
    both, missed, false_positive = label_metrics(pred, ref, SPACING, labels=[3, 1, 2])
    diagonal = image_diagonal_mm(SHAPE, SPACING)
    assert (both.label, both.empty) == (3, "both")
    assert (both.dice, both.iou, both.nsd, both.hd95, both.assd, both.rel_vol_diff) == (1, 1, 1, 0, 0, 0)
    for metrics, kind in ((missed, "pred"), (false_positive, "ref")):
        assert metrics.empty == kind
        assert (metrics.dice, metrics.iou, metrics.nsd) == (0, 0, 0)
        assert (
            metrics.hd == metrics.hd95 == metrics.assd == metrics.msd_pred_to_ref == pytest.approx(diagonal)
        )
    assert missed.rel_vol_diff == -1.0
    assert math.isinf(false_positive.rel_vol_diff)
    custom = label_metrics(pred, ref, SPACING, labels=[1], empty_distance_mm=373.13)[0]
    assert custom.hd95 == 373.13


def test_default_labels_are_those_present_and_bool_maps_work(rng):
    pred, ref = random_label_map(rng, labels=2), random_label_map(rng, labels=3)
    assert [m.label for m in label_metrics(pred, ref, SPACING)] == [1, 2, 3]
    (single,) = label_metrics(pred > 0, ref > 0, SPACING)
    assert isinstance(single, LabelMetrics) and single.label == 1


def test_bad_label_maps_are_rejected():
    with pytest.raises(MetricInputError, match="dtype float"):
        label_metrics(np.zeros(SHAPE, float), np.zeros(SHAPE, np.uint8), SPACING)
    with pytest.raises(MetricInputError, match="negative"):
        label_metrics(-np.ones(SHAPE, np.int16), np.zeros(SHAPE, np.int16), SPACING)
    with pytest.raises(MetricInputError, match="shape"):
        label_metrics(np.zeros(SHAPE, np.uint8), np.zeros((4, 4, 4), np.uint8), SPACING)
    with pytest.raises(MetricInputError, match="positive"):
        label_metrics(np.zeros(SHAPE, np.uint8), np.zeros(SHAPE, np.uint8), SPACING, labels=[0, 1])
