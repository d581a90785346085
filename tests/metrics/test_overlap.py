from __future__ import annotations

import numpy as np
import pytest
from metric_shapes import SPACING, box

from medswin.errors import MetricInputError
from medswin.metrics import dice, iou, precision, sensitivity, volume_ml, voxel_volume_ml

SHAPE = (30, 24, 12)


def test_shifted_boxes_have_hand_computed_overlap():
    ref = box(SHAPE, (5, 5, 2), (15, 15, 6))  # 10 × 10 × 4 = 400 voxels
    pred = box(SHAPE, (7, 5, 2), (17, 15, 6))  # shifted 2 voxels: overlap 8 × 10 × 4 = 320
    assert dice(pred, ref) == pytest.approx(2 * 320 / 800)
    assert iou(pred, ref) == pytest.approx(320 / 480)
    assert sensitivity(pred, ref) == pytest.approx(0.8)
    assert precision(pred, ref) == pytest.approx(0.8)


def test_sensitivity_and_precision_differ_for_an_oversized_prediction():
    ref = box(SHAPE, (5, 5, 2), (15, 15, 6))  # 400
    pred = box(SHAPE, (5, 5, 2), (15, 15, 8))  # 600, contains ref
    assert sensitivity(pred, ref) == 1.0
    assert precision(pred, ref) == pytest.approx(400 / 600)
    assert dice(pred, ref) == pytest.approx(800 / 1000)


def test_volume_is_voxel_count_times_anisotropic_voxel_volume():
    mask = box(SHAPE, (0, 0, 0), (10, 10, 4))
    assert voxel_volume_ml(SPACING) == pytest.approx(0.8 * 1.3 * 2.5 / 1000)
    assert volume_ml(mask, SPACING) == pytest.approx(400 * 0.8 * 1.3 * 2.5 / 1000)
    assert volume_ml(mask[:, :, 0], SPACING[:2]) == pytest.approx(100 * 0.8 * 1.3 / 100)  # 2D: cm²


@pytest.mark.parametrize(
    ("pred_empty", "ref_empty", "expected"),
    [(True, True, 1.0), (True, False, 0.0), (False, True, 0.0)],
    ids=["both-empty", "missed", "false-positive"],
)
def test_empty_policy_is_defined_never_nan(pred_empty, ref_empty, expected):
    full = box(SHAPE, (5, 5, 2), (15, 15, 6))
    pred = np.zeros(SHAPE, bool) if pred_empty else full
    ref = np.zeros(SHAPE, bool) if ref_empty else full
    for metric in (dice, iou, sensitivity, precision):
        assert metric(pred, ref) == expected, metric.__name__


def test_shape_mismatch_is_a_metric_input_error():
    with pytest.raises(MetricInputError, match="shape"):
        dice(np.zeros((4, 4, 4)), np.zeros((4, 4, 5)))


def test_structure_dice_scores_named_label_groups() -> None:
    from medswin.metrics.overlap import structure_dice

    truth = np.zeros((6, 6, 4), np.uint8)
    truth[1:3, 1:3, :] = 1  # 16 voxels
    truth[3:5, 3:5, :] = 3  # 16 voxels
    predicted = truth.copy()
    predicted[1:3, 1:3, :2] = 0  # half of label 1 missed
    scores = structure_dice(predicted, truth, {"one": (1,), "core": (1, 3), "absent": (7,)})
    assert scores == {"one": pytest.approx(2 * 8 / 24), "core": pytest.approx(2 * 24 / 56), "absent": 1.0}
