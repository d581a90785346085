from __future__ import annotations

import csv
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medswin.cli.main import main
from medswin.errors import MedSwinError
from medswin.io.writers import write_image
from medswin.metrics.pairing import label_case, pair_cases

AFFINE = np.array(
    [
        [-1.2, 0.0, 0.0, 20.0],
        [0.0, -0.9, 0.0, 15.0],
        [0.0, 0.0, 2.5, -30.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
)


def write_labels(path: Path, array: np.ndarray, affine: np.ndarray = AFFINE, dtype=np.uint8) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array.astype(dtype), affine), str(path))
    return path


def organs(shift: int = 0) -> np.ndarray:
    labels = np.zeros((24, 20, 10), np.uint8)
    labels[3 + shift : 11 + shift, 3:11, 2:7] = 1
    labels[14:20, 12:18, 3:8] = 2
    return labels


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    write_labels(gt / "case_a.nii.gz", organs())
    write_labels(pred / "case_a.nii.gz", organs(shift=1))
    write_labels(gt / "case_b.nii", organs())
    write_labels(pred / "case_b.nii.gz", organs(), dtype=np.float32)  # float-stored integer labels are fine
    return pred, gt


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open() as stream:
        return list(csv.DictReader(stream))


def test_case_ids_strip_image_suffixes_only():
    assert label_case(Path("BraTS-GLI-00001-000.nii.gz")) == "BraTS-GLI-00001-000"
    assert label_case(Path("a.NII")) == "a"
    assert label_case(Path("b.mha")) == label_case(Path("b.nrrd")) == "b"
    assert label_case(Path("c.mhd")) == label_case(Path("c.nhdr")) == "c"
    assert label_case(Path("c_0000.nii.gz")) == "c_0000"  # a label file has no channels
    assert label_case(Path("notes.txt")) is None and label_case(Path(".hidden.nii.gz")) is None
    assert label_case(Path("photo.png")) is None and label_case(Path("study.zip")) is None


def test_metaimage_and_nrrd_header_references_pair_with_nifti_predictions(folders, tmp_path):
    """.mhd (+ its data file) and .nhdr (+ .raw) references are read like any other label image; they were skipped."""
    import SimpleITK as sitk

    from medswin.io.readers import read_image

    pred, gt = folders
    write_image(read_image(gt / "case_a.nii.gz", kind="label"), gt / "case_a.mhd")
    sitk.WriteImage(sitk.ReadImage(str(gt / "case_b.nii")), str(gt / "case_b.nhdr"))
    (gt / "case_a.nii.gz").unlink()
    (gt / "case_b.nii").unlink()
    out = tmp_path / "m.csv"
    assert (
        main(["evaluate", "--pred", str(pred), "--gt", str(gt), "-o", str(out), "--labels", "1,2", "-q"]) == 0
    )
    rows = read_rows(out)
    assert [(r["case"], r["label"]) for r in rows] == [
        ("case_a", "1"),
        ("case_a", "2"),
        ("case_b", "1"),
        ("case_b", "2"),
    ]
    assert float(rows[0]["dice"]) == pytest.approx(2 * 7 * 8 * 5 / (2 * 8 * 8 * 5))
    assert float(rows[2]["dice"]) == 1.0


def test_one_pair_of_files_is_evaluated(folders, tmp_path, capsys):
    pred, gt = folders
    out = tmp_path / "one.csv"
    code = main(
        [
            "evaluate",
            "--pred",
            str(pred / "case_a.nii.gz"),
            "--gt",
            str(gt / "case_a.nii.gz"),
            "-o",
            str(out),
            "-q",
        ]
    )
    assert code == 0
    rows = read_rows(out)
    assert {r["case"] for r in rows} == {"case_a"} and len(rows) == 2
    assert float(rows[0]["dice"]) == pytest.approx(2 * 7 * 8 * 5 / (2 * 8 * 8 * 5))
    # a file against a folder is a usage error that names both
    assert (
        main(["evaluate", "--pred", str(pred / "case_a.nii.gz"), "--gt", str(gt), "-o", str(out), "-q"]) == 2
    )
    assert "is a file but" in capsys.readouterr().err


def test_end_to_end_writes_csv_and_summary(folders, tmp_path, capsys):
    pred, gt = folders
    out = tmp_path / "results" / "metrics.csv"
    code = main(["evaluate", "--pred", str(pred), "--gt", str(gt), "-o", str(out), "--labels", "1,2", "-q"])
    assert code == 0
    rows = read_rows(out)
    assert [(r["case"], r["label"]) for r in rows] == [
        ("case_a", "1"),
        ("case_a", "2"),
        ("case_b", "1"),
        ("case_b", "2"),
    ]
    for column in (
        "dice",
        "iou",
        "sensitivity",
        "precision",
        "hd",
        "hd95",
        "assd",
        "nsd",
        "vol_pred_ml",
        "vol_ref_ml",
    ):
        assert column in rows[0]
    assert float(rows[0]["dice"]) == pytest.approx(2 * 7 * 8 * 5 / (2 * 8 * 8 * 5))
    assert float(rows[0]["hd"]) == pytest.approx(1.2)  # one voxel along the 1.2 mm axis
    assert float(rows[0]["vol_ref_ml"]) == pytest.approx(8 * 8 * 5 * 1.2 * 0.9 * 2.5 / 1000)
    assert float(rows[2]["dice"]) == 1.0
    summary = json.loads((tmp_path / "results" / "metrics_summary.json").read_text())
    assert summary["n_cases"] == 2 and summary["n_failed"] == 0
    assert summary["labels"]["1"]["n"] == 2
    assert capsys.readouterr().out == ""  # -q: no table


def test_a_label_is_averaged_over_the_same_cases_with_and_without_labels(folders, tmp_path):
    pred, gt = folders
    tumour = organs()
    tumour[18:22, 3:7, 6:9] = 3  # label 3 in one case only; the other case is empty in both images
    write_labels(gt / "case_c.nii.gz", tumour)
    write_labels(pred / "case_c.nii.gz", tumour)
    summaries = []
    for extra in ([], ["--labels", "1,2,3"]):
        out = tmp_path / f"run{len(extra)}" / "metrics.csv"
        assert main(["evaluate", "--pred", str(pred), "--gt", str(gt), "-o", str(out), "-q", *extra]) == 0
        rows = read_rows(out)
        assert [(r["case"], r["label"]) for r in rows if r["label"] == "3"] == [
            ("case_a", "3"),
            ("case_b", "3"),
            ("case_c", "3"),
        ]
        case_a = next(r for r in rows if r["label"] == "3" and r["case"] == "case_a")
        assert (float(case_a["dice"]), case_a["empty"]) == (1.0, "both")
        summaries.append(json.loads((out.parent / "metrics_summary.json").read_text())["labels"])
    without, given = summaries
    assert without == given
    assert without["3"]["n"] == 3 and without["3"]["empty"]["both"] == 2


def test_unpaired_and_broken_cases_are_reported_and_fail_the_run(folders, tmp_path, capsys):
    pred, gt = folders
    write_labels(gt / "case_missing.nii.gz", organs())  # no prediction
    write_labels(pred / "case_extra.nii.gz", organs())  # no reference
    write_labels(gt / "case_moved.nii.gz", organs())
    moved = AFFINE.copy()
    moved[0, 3] += 5.0
    write_labels(pred / "case_moved.nii.gz", organs(), affine=moved)  # other grid
    out = tmp_path / "metrics.csv"
    code = main(["evaluate", "--pred", str(pred), "--gt", str(gt), "-o", str(out)])
    assert code == 1
    captured = capsys.readouterr()
    assert "case_extra" in captured.err and "without a reference" in captured.err
    assert "case_missing" in captured.err and "without a prediction" in captured.err
    assert "case_moved" in captured.err and "origin" in captured.err
    assert "Dice" in captured.out  # summary table
    assert {r["case"] for r in read_rows(out)} == {"case_a", "case_b"}
    summary = json.loads((tmp_path / "metrics_summary.json").read_text())
    assert {f["case"] for f in summary["failed"]} == {"case_missing", "case_moved"}
    assert summary["unpaired_predictions"] == ["case_extra"]


def test_parallel_jobs_give_the_same_table(folders, tmp_path):
    pred, gt = folders
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    assert main(["evaluate", "--pred", str(pred), "--gt", str(gt), "-o", str(one), "-q"]) == 0
    assert main(["evaluate", "--pred", str(pred), "--gt", str(gt), "-o", str(two), "-q", "--jobs", "2"]) == 0
    assert one.read_text() == two.read_text()


def test_labels_outside_the_declared_set_fail_the_case(folders, tmp_path, capsys):
    pred, gt = folders
    code = main(
        [
            "evaluate",
            "--pred",
            str(pred),
            "--gt",
            str(gt),
            "-o",
            str(tmp_path / "m.csv"),
            "--labels",
            "1",
            "-q",
        ]
    )
    assert code == 1
    assert "labels [2] are not among the declared labels [1]" in capsys.readouterr().err


def test_brats_mode(tmp_path):
    labels = np.zeros((30, 30, 16), np.uint8)
    labels[5:20, 5:20, 3:12] = 2
    labels[9:16, 9:16, 5:10] = 3
    labels[11:14, 11:14, 6:9] = 1
    identity = np.eye(4)
    write_labels(tmp_path / "gt" / "BraTS-GLI-00001-000.nii.gz", labels, identity)
    predicted = labels.copy()
    predicted[predicted == 1] = 3
    write_labels(tmp_path / "pred" / "BraTS-GLI-00001-000.nii.gz", predicted, identity)
    out = tmp_path / "brats.csv"
    argv = [
        "evaluate",
        "--pred",
        str(tmp_path / "pred"),
        "--gt",
        str(tmp_path / "gt"),
        "-o",
        str(out),
        "--brats",
        "-q",
    ]
    assert main(argv) == 0
    rows = {r["label"]: r for r in read_rows(out)}
    assert list(rows) == ["WT", "TC", "ET"]
    assert float(rows["WT"]["lesion_dice"]) == 1.0 and float(rows["TC"]["dice"]) == 1.0
    assert float(rows["ET"]["dice"]) < 1.0 and rows["ET"]["lesion_tp"] == "1"


def test_usage_errors_exit_2(folders, tmp_path, capsys):
    pred, gt = folders
    out = str(tmp_path / "m.csv")
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--pred", str(pred), "--gt", str(gt), "-o", out, "--labels", "one"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--pred", str(pred), "--gt", str(gt), "-o", out, "--nsd-tolerance", "-1"])
    assert exit_info.value.code == 2
    assert main(["evaluate", "--pred", str(tmp_path / "nowhere"), "--gt", str(gt), "-o", out]) == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["evaluate", "--pred", str(empty), "--gt", str(gt), "-o", out]) == 2
    assert "no case" in capsys.readouterr().err
    assert main(["evaluate", "--pred", str(pred), "--gt", str(gt), "-o", str(tmp_path / "m.txt")]) == 2
    assert not (tmp_path / "m.csv").exists()


def test_duplicate_case_files_are_a_usage_error(folders):
    pred, gt = folders
    write_labels(pred / "case_a.nii", organs())
    with pytest.raises(MedSwinError, match="two files"):
        pair_cases(pred, gt)
