"""``medswin info`` and ``medswin convert`` in-process, including bad inputs (exit 2, nothing written)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "io"))

from dicom_factory import ct_image, write_report, write_series, zip_folder  # noqa: E402

from medswin.cli.main import main  # noqa: E402
from medswin.io import read_image  # noqa: E402


@pytest.fixture
def study(tmp_path):
    """A zipped study: an oblique CT (10 slices) and a small MR (4 slices), plus an SR report."""
    folder = tmp_path / "study"
    ct = write_series(folder / "ct", ct_image(orientation="oblique"), series_number=3)
    mr = write_series(
        folder / "mr",
        ct_image(shape=(12, 10, 4)),
        modality="MR",
        series_number=8,
        series_description="T1 AX",
        study_uid=ct.study_uid,
    )
    write_report(folder / "sr.dcm", ct.study_uid)
    return zip_folder(folder, tmp_path / "study.zip"), ct, mr


def test_info_lists_every_series_and_describes_the_largest(study, capsys):
    archive, ct, mr = study
    assert main(["info", str(archive)]) == 0
    out = capsys.readouterr().out
    assert "series:       2 found" in out
    assert "* #3    CT     10 frames" in out and ct.series_uid in out
    assert "'T1 AX'" in out and mr.series_uid in out
    assert "spacing:      0.8 × 0.7 × 2.5 mm" in out
    assert "orientation:  LPS" in out and "dtype:        int16" in out and "modality:     CT" in out


def test_info_json_for_a_chosen_series(study, capsys):
    archive, ct, mr = study
    assert main(["info", str(archive), "--series", mr.series_uid, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [s["selected"] for s in document["series"]] == [False, True]
    assert document["image"]["shape"] == [12, 10, 4]
    assert document["image"]["modality"] == "MR"
    assert document["image"]["min"] == float(mr.expected.array.min())


def test_convert_dicom_zip_to_nifti_keeps_geometry(study, tmp_path, capsys):
    archive, ct, _ = study
    out = tmp_path / "out" / "ct.nii.gz"
    assert main(["convert", str(archive), "-o", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    image = read_image(out)
    assert image.grid_difference(ct.expected, atol_mm=1e-4) is None
    np.testing.assert_array_equal(image.array, ct.expected.array)
    # NIfTI -> MHA -> NRRD chain stays exact
    assert main(["convert", str(out), "-o", str(tmp_path / "ct.mha")]) == 0
    assert main(["convert", str(tmp_path / "ct.mha"), "-o", str(tmp_path / "ct.nrrd")]) == 0
    final = read_image(tmp_path / "ct.nrrd")
    assert final.grid_difference(image, atol_mm=1e-6) is None
    np.testing.assert_array_equal(final.array, image.array)


def test_info_lists_series_even_when_the_chosen_one_cannot_be_read(tmp_path, capsys):
    written = write_series(tmp_path / "ct", ct_image())
    written.files[5].unlink()
    assert main(["info", str(tmp_path / "ct")]) == 2
    captured = capsys.readouterr()
    assert written.series_uid in captured.out
    assert "missing slice" in captured.err and "--allow-gaps" in captured.err
    assert main(["info", str(tmp_path / "ct"), "--allow-gaps"]) == 0


def test_convert_refuses_missing_slices_unless_allowed(tmp_path):
    written = write_series(tmp_path / "ct", ct_image())
    written.files[5].unlink()
    out = tmp_path / "ct.nii.gz"
    assert main(["convert", str(tmp_path / "ct"), "-o", str(out)]) == 2
    assert not out.exists()
    assert main(["convert", str(tmp_path / "ct"), "-o", str(out), "--allow-gaps"]) == 0
    assert read_image(out).shape == (24, 20, 10)


def test_convert_float_label_map_to_uint8(tmp_path):
    import nibabel as nib

    values = np.zeros((6, 5, 4), np.float32)
    values[1:4, 1:3, 1:3] = 2.0
    affine = np.diag([-0.8, 0.7, 2.5, 1.0])
    nib.save(nib.Nifti1Image(values, affine), tmp_path / "seg.nii.gz")
    assert main(["convert", str(tmp_path / "seg.nii.gz"), "-o", str(tmp_path / "seg.mha"), "--labels"]) == 0
    labels = read_image(tmp_path / "seg.mha", kind="label")
    assert labels.array.dtype == np.uint8
    np.testing.assert_array_equal(labels.array[0], values)
    np.testing.assert_allclose(labels.affine, affine, atol=1e-6)


@pytest.mark.parametrize(
    ("make_input", "message"),
    [
        (lambda p: p / "missing.nii.gz", "missing.nii.gz: no such file or folder"),
        (
            lambda p: (p / "broken.nii.gz").write_bytes(b"\x1f\x8b\x08\x00garbage") and p / "broken.nii.gz",
            "broken.nii.gz",
        ),
        (
            lambda p: (p / "reports").mkdir() or write_report(p / "reports" / "sr.dcm").parent,
            "reports: holds DICOM objects but no images",
        ),
        (
            lambda p: (p / "notes.txt").write_text("hi") and p / "notes.txt",
            "notes.txt: unrecognised file format",
        ),
    ],
)
@pytest.mark.parametrize("command", ["info", "convert"])
def test_bad_inputs_exit_2_naming_the_file_and_write_nothing(tmp_path, capsys, make_input, message, command):
    source = make_input(tmp_path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    argv = [command, str(source)] + (["-o", str(out_dir / "x.nii.gz")] if command == "convert" else [])
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert os.listdir(out_dir) == []


def test_convert_refuses_bad_outputs_and_keeps_existing_files(study, tmp_path, capsys):
    archive, _, _ = study
    assert main(["convert", str(archive), "-o", str(tmp_path / "ct.jpg")]) == 2
    assert "ct.jpg: unsupported output extension" in capsys.readouterr().err
    existing = tmp_path / "ct.nii.gz"
    existing.write_bytes(b"precious")
    assert main(["convert", str(archive), "-o", str(existing)]) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert existing.read_bytes() == b"precious"
    assert main(["convert", str(archive), "-o", str(existing), "--overwrite"]) == 0
    assert read_image(existing).shape == (24, 20, 10)
