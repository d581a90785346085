from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from medswin.data.phantom import oblique_direction
from medswin.errors import MedSwinError, MetricInputError
from medswin.io.image import Image
from medswin.metrics import (
    CSV_COLUMNS,
    CaseResult,
    evaluate_case,
    label_metrics,
    summarize,
    summary_path_for,
    write_metrics_csv,
    write_summary_json,
)


def label_image(array: np.ndarray, name: str, spacing=(1.2, 0.9, 2.5), direction=None) -> Image:
    return Image(
        array[None],
        spacing,
        (-10.0, 20.0, 5.0),
        oblique_direction() if direction is None else direction,
        kind="label",
        meta={"path": f"/data/{name}.nii.gz"},
    )


def test_case_metrics_equal_the_array_engine_on_the_phantom(phantom):
    ref = phantom.labels
    shifted = np.roll(ref.array[0], 1, axis=0)
    pred = ref.with_array(shifted)
    result = evaluate_case(pred, ref, case="c1")
    expected = label_metrics(shifted, ref.array[0], ref.spacing)
    assert result.ok and result.case == "c1"
    assert [row["label"] for row in result.rows] == [m.label for m in expected]
    assert result.rows == [m.as_dict() for m in expected]


def test_geometry_mismatch_names_both_files():
    array = np.zeros((8, 8, 4), np.uint8)
    ref = label_image(array, "ref")
    with pytest.raises(MetricInputError, match=r"/data/pred\.nii\.gz and /data/ref\.nii\.gz.*spacing"):
        evaluate_case(label_image(array, "pred", spacing=(1.2, 0.9, 3.0)), ref)
    with pytest.raises(MetricInputError, match="shape"):
        evaluate_case(label_image(np.zeros((8, 8, 5), np.uint8), "pred"), ref)
    with pytest.raises(MetricInputError, match="direction"):
        evaluate_case(label_image(array, "pred", direction=np.eye(3)), ref)


def test_float_labels_must_be_integral_and_nonnegative():
    ref = label_image(np.ones((8, 8, 4), np.uint8), "ref")
    whole = evaluate_case(label_image(np.ones((8, 8, 4), np.float32), "pred"), ref)  # 1.0 is fine
    assert whole.rows[0]["dice"] == 1.0
    probabilities = np.full((8, 8, 4), 0.7, np.float32)
    with pytest.raises(MetricInputError, match=r"pred\.nii\.gz.*non-integer.*probability"):
        evaluate_case(label_image(probabilities, "pred"), ref)
    with pytest.raises(MetricInputError, match="negative"):
        evaluate_case(label_image(-np.ones((8, 8, 4), np.int16), "pred"), ref)
    two_channels = Image(np.zeros((2, 8, 8, 4)), ref.spacing, ref.origin, ref.direction, kind="label")
    with pytest.raises(MetricInputError, match="one channel"):
        evaluate_case(two_channels, ref)


def test_labels_outside_the_declared_set_fail_and_absent_ones_are_both_empty():
    ref = np.zeros((10, 10, 6), np.uint8)
    ref[2:5, 2:5, 1:4] = 1
    pred = ref.copy()
    pred[6:8, 6:8, 2:4] = 5
    with pytest.raises(
        MetricInputError, match=r"pred\.nii\.gz: labels \[5\] are not among the declared labels \[1, 2\]"
    ):
        evaluate_case(label_image(pred, "pred"), label_image(ref, "ref"), labels=[1, 2])
    result = evaluate_case(label_image(ref, "pred"), label_image(ref, "ref"), labels=[1, 2])
    assert [(row["label"], row["empty"], row["dice"]) for row in result.rows] == [
        (1, "", 1.0),
        (2, "both", 1.0),
    ]


def test_brats_mode_reports_regions(tmp_path):
    ref = np.zeros((24, 24, 12), np.uint8)
    ref[4:16, 4:16, 2:10] = 2
    ref[7:13, 7:13, 4:8] = 3
    result = evaluate_case(
        label_image(ref, "p", spacing=(1, 1, 1)), label_image(ref, "r", spacing=(1, 1, 1)), brats=True
    )
    assert [row["label"] for row in result.rows] == ["WT", "TC", "ET"]
    assert all(row["lesion_dice"] == 1.0 for row in result.rows)
    with pytest.raises(MetricInputError, match="374"):
        evaluate_case(label_image(ref, "p"), label_image(ref, "r"), brats=True, empty_distance_mm=100.0)
    ref[0, 0, 0] = 4
    with pytest.raises(MetricInputError, match="resection cavity"):
        evaluate_case(label_image(ref, "p"), label_image(ref, "r"), brats=True)
    path = write_metrics_csv([result], tmp_path / "brats.csv")
    header = path.read_text().splitlines()[0].split(",")
    assert header[-6:] == ["legacy_hd95", "lesion_dice", "lesion_hd95", "lesion_tp", "lesion_fn", "lesion_fp"]


def three_cases() -> list[CaseResult]:
    ref = np.zeros((12, 12, 6), np.uint8)
    ref[2:8, 2:8, 1:5] = 1
    good = ref.copy()
    missed = np.zeros_like(ref)
    results = [
        evaluate_case(label_image(good, "a"), label_image(ref, "a"), labels=[1], case="a"),
        evaluate_case(label_image(missed, "b"), label_image(ref, "b"), labels=[1], case="b"),
        CaseResult.failed("c", "c.nii.gz: cannot read", pred_path="p/c.nii.gz", ref_path="g/c.nii.gz"),
    ]
    return results


def test_summary_keeps_empty_and_failed_cases():
    summary = summarize(three_cases())
    assert (summary["n_cases"], summary["n_evaluated"], summary["n_failed"]) == (3, 2, 1)
    assert summary["failed"][0]["case"] == "c" and "cannot read" in summary["failed"][0]["error"]
    label = summary["labels"]["1"]
    assert label["n"] == 2 and label["empty"] == {"both": 0, "pred": 1, "ref": 0}
    assert label["metrics"]["dice"]["mean"] == 0.5  # the miss counts as 0, it is not dropped
    assert label["metrics"]["dice"]["median"] == 0.5
    assert label["metrics"]["dice"]["std"] == pytest.approx(np.std([1.0, 0.0], ddof=1))
    diagonal = float(np.linalg.norm(np.array([12, 12, 6]) * np.array([1.2, 0.9, 2.5])))
    assert label["metrics"]["hd95"]["max"] == pytest.approx(diagonal)


def test_reports_are_tidy_and_strict_json(tmp_path):
    results = three_cases()
    ref = np.zeros((12, 12, 6), np.uint8)
    pred = ref.copy()
    pred[1:3, 1:3, 1:3] = 1  # a false positive: relative volume difference is +inf
    results.append(evaluate_case(label_image(pred, "d"), label_image(ref, "d"), labels=[1], case="d"))
    csv_path = write_metrics_csv(results, tmp_path / "out" / "metrics.csv")
    rows = list(csv.DictReader(csv_path.open()))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [(row["case"], row["label"], row["empty"]) for row in rows] == [
        ("a", "1", ""),
        ("b", "1", "pred"),
        ("d", "1", "ref"),
    ]
    assert rows[2]["rel_vol_diff"] == "inf"
    json_path = write_summary_json(summarize(results), summary_path_for(csv_path))
    assert json_path.name == "metrics_summary.json"
    summary = json.loads(
        json_path.read_text(), parse_constant=lambda name: pytest.fail(f"non-strict JSON {name}")
    )
    stats = summary["labels"]["1"]["metrics"]["rel_vol_diff"]
    assert stats["mean"] is None and stats["n_nonfinite"] == 1
    assert not [p for p in csv_path.parent.iterdir() if p.name.endswith(".tmp")]


def test_writing_replaces_atomically_and_keeps_the_old_file_on_error(tmp_path, monkeypatch):
    path = tmp_path / "metrics.csv"
    path.write_text("old\n")

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("medswin.files.os.replace", broken)
    with pytest.raises(
        MedSwinError, match=r"metrics.csv: could not write \(disk full\); nothing was written"
    ):
        write_metrics_csv(three_cases(), path)
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.csv"]
