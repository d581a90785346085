"""Volumes, centroids and comparison scores equal the metrics module's own numbers."""

from __future__ import annotations

import numpy as np
import pytest
from napari_medswin._analysis import compare_structures, structure_volumes

from medswin.data.phantom import PHANTOM_LABELS, make_ct_phantom
from medswin.errors import MetricInputError
from medswin.io import reorient
from medswin.metrics import evaluate_case, volume_ml

pytestmark = pytest.mark.napari

NAMES = {value: name for value, (name, _) in PHANTOM_LABELS.items()}


def test_volumes_equal_metrics_volume_ml_and_centroids_are_in_lps(small_case):
    labels = small_case.labels
    names = {**NAMES, 9: "absent organ"}
    rows = structure_volumes(labels, names)
    assert [r.label for r in rows] == [1, 2, 3, 4, 5, 9]
    for row in rows:
        mask = labels.array[0] == row.label
        assert row.name == names[row.label]
        assert row.voxels == int(mask.sum())
        assert row.volume_ml == volume_ml(mask, labels.spacing)
        if row.voxels == 0:
            assert row.centroid_lps_mm is None
            continue
        index = np.argwhere(mask).mean(axis=0)
        np.testing.assert_allclose(
            row.centroid_lps_mm, (labels.lps_affine @ np.r_[index, 1.0])[:3], atol=1e-9
        )


def test_volume_of_a_known_box():
    case = make_ct_phantom(shape=(10, 10, 10), spacing=(0.5, 2.0, 3.0), seed=0)
    array = np.zeros((1, 10, 10, 10), dtype=np.uint8)
    array[0, 2:6, 1:4, 5:7] = 7  # 4 × 3 × 2 = 24 voxels of 3 mm³
    (row,) = structure_volumes(case.labels.with_array(array))
    assert (row.label, row.name, row.voxels) == (7, "label 7", 24)
    assert row.volume_ml == pytest.approx(24 * 0.5 * 2.0 * 3.0 / 1000.0)


def test_float_labels_are_refused():
    case = make_ct_phantom(shape=(8, 8, 8), seed=0)
    with pytest.raises(MetricInputError, match="integers"):
        structure_volumes(case.image.with_array(case.image.array, kind="label"))


def test_comparison_rows_equal_evaluate_case(small_case):
    reference = small_case.labels
    other = make_ct_phantom(reference.shape, reference.spacing, "LPS", seed=7).labels
    prediction = reference.with_array(other.array, kind="label")
    rows = compare_structures(prediction, reference, NAMES, nsd_tolerance_mm=1.5)
    expected = evaluate_case(prediction, reference, nsd_tolerance_mm=1.5).rows
    assert [r["label"] for r in rows] == [int(e["label"]) for e in expected]
    for row, truth in zip(rows, expected, strict=True):
        assert row["name"] == NAMES[row["label"]]
        assert (row["dice"], row["hd95_mm"], row["nsd"]) == (truth["dice"], truth["hd95"], truth["nsd"])
    assert any(r["dice"] < 1.0 for r in rows)  # seeds differ: a real comparison, not identity


def test_reference_in_another_axis_order_is_reoriented_not_refused():
    case = make_ct_phantom(shape=(20, 18, 10), spacing=(1.0, 1.5, 2.0), orientation="RAS", seed=1)
    reference_lps = reorient(case.labels, "LPS")
    rows = compare_structures(case.labels, reference_lps)
    assert all(r["dice"] == 1.0 and r["hd95_mm"] == 0.0 for r in rows)


def test_different_grids_are_refused(small_case):
    shifted = small_case.labels.with_array(small_case.labels.array)
    shifted.origin = tuple(np.asarray(shifted.origin) + 1.0)
    with pytest.raises(MetricInputError, match="not on one grid"):
        compare_structures(small_case.labels, shifted)


def test_comparison_names_come_from_whichever_side_has_them(small_case):
    labels = small_case.labels
    nifti_like = {value: f"label {value}" for value in NAMES}  # what a file without names gets
    from_reference = compare_structures(labels, labels, nifti_like, reference_names=NAMES)
    from_prediction = compare_structures(labels, labels, NAMES, reference_names=nifti_like)
    for rows in (from_reference, from_prediction):
        assert [r["name"] for r in rows] == [NAMES[r["label"]] for r in rows]
    assert from_prediction[0]["pair"] == f"{NAMES[1]} ↔ label 1"
    assert from_reference[0]["pair"] == f"label 1 ↔ {NAMES[1]}"


def test_comparison_says_when_both_sides_name_a_label_differently(small_case):
    labels = small_case.labels
    swapped = {**NAMES, 1: NAMES[2], 2: NAMES[1]}
    rows = {r["label"]: r for r in compare_structures(labels, labels, NAMES, reference_names=swapped)}
    assert rows[1]["pair"] == f"{NAMES[1]} ↔ {NAMES[2]} (names differ)"
    assert rows[3]["pair"] == f"{NAMES[3]} ↔ {NAMES[3]}"
    spelled = {value: name.replace("_", " ").upper() for value, name in NAMES.items()}
    rows = compare_structures(labels, labels, NAMES, reference_names=spelled)
    assert not any("differ" in r["pair"] for r in rows)


def test_a_comparison_asked_to_stop_raises_cancelled_before_the_next_label():
    """Cancel is asked before each label: a True answer stops the scoring, False changes nothing."""
    from medswin.errors import CancelledError

    reference = make_ct_phantom(shape=(24, 20, 12), seed=3).labels
    prediction = reference.with_array(make_ct_phantom(shape=(24, 20, 12), seed=4).labels.array, kind="label")
    asked: list[int] = []

    def cancel_after_two() -> bool:
        asked.append(1)
        return len(asked) > 2

    with pytest.raises(CancelledError, match="cancelled"):
        compare_structures(prediction, reference, NAMES, cancel=cancel_after_two)
    assert len(asked) >= 3
    asked.clear()
    rows = compare_structures(prediction, reference, NAMES, cancel=lambda: bool(asked.append(1)))
    assert len(asked) == len(rows) == len(NAMES)
    assert rows == compare_structures(prediction, reference, NAMES)
