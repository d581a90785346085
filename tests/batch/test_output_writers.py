"""``medswin predict --output-format`` with the registry's newer writers: surface meshes and RTSTRUCT."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
import trimesh
from batch_factory import ct_case, write_nifti_cases
from dicom_factory import write_series
from test_rtstruct_output import dciodvfy_errors, dice, rasterise

from medswin.batch.folder import folder_key
from medswin.cli.main import main
from medswin.io import read_image
from medswin.io.deidentify import pseudonymous_uid


def _predict(inputs: list[Path], out: Path, model: Path, *extra: str) -> int:
    argv = ["-q", "predict", *(a for p in inputs for a in ("-i", str(p))), "-o", str(out), "-m", str(model)]
    return main([*argv, *extra])


def _summary(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as stream:
        return {row["case"]: row for row in csv.DictReader(stream)}


@pytest.mark.slow  # three predictions of one case: about 10 s
def test_meshes_are_added_to_a_finished_case_one_per_label_present(
    tmp_path: Path, tiny_checkpoint: Path
) -> None:
    (data,) = write_nifti_cases(tmp_path / "data", ["c0", "c1", "c2"])[2:]  # the oblique one
    out = tmp_path / "out"
    assert _predict([data], out, tiny_checkpoint) == 0
    finished = (out / "c2.nii.gz").stat().st_mtime_ns

    assert _predict([data], out, tiny_checkpoint, "--output-format", "nifti", "mesh") == 0
    assert (out / "c2.nii.gz").stat().st_mtime_ns == finished  # only the meshes were missing
    record = json.loads((out / "c2.json").read_text())
    labels = read_image(out / "c2.nii.gz", kind="label")
    present = [name for name, facts in record["labels"].items() if facts["voxels"]]
    assert present, "the tiny model labels something"
    assert record["outputs"]["mesh"] == [f"c2_mesh_{name}.stl" for name in present]
    assert record["formats"] == ["nifti", "mesh"] and set(record["outputs"]["mesh"]) <= set(record["files"])
    corners = np.array(
        [
            [i, j, k, 1]
            for i in (-0.5, labels.shape[0] - 0.5)
            for j in (-0.5, labels.shape[1] - 0.5)
            for k in (-0.5, labels.shape[2] - 0.5)
        ]
    )
    box = (labels.lps_affine @ corners.T)[:3].T
    for name in record["outputs"]["mesh"]:
        mesh = trimesh.load(out / name)
        assert mesh.is_watertight and mesh.volume > 0
        assert np.all(mesh.bounds[0] >= box.min(axis=0) - 0.5) and np.all(
            mesh.bounds[1] <= box.max(axis=0) + 0.5
        )
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []

    assert _predict([data], out, tiny_checkpoint, "--output-format", "nifti", "mesh") == 0
    assert _summary(out / "summary.csv")["c2"]["status"] == "skipped"
    (out / record["outputs"]["mesh"][0]).unlink()  # a mesh gone: the case is redone, all of it again
    assert _predict([data], out, tiny_checkpoint, "--output-format", "nifti", "mesh") == 0
    assert _summary(out / "summary.csv")["c2"]["status"] == "done"
    assert json.loads((out / "c2.json").read_text())["outputs"]["mesh"] == record["outputs"]["mesh"]


@pytest.mark.slow  # about 8 s
def test_rtstruct_from_a_dicom_study_deidentified_under_hidden_case_names(
    tmp_path: Path, tiny_checkpoint: Path
) -> None:
    series = write_series(tmp_path / "Doe^Jane", ct_case(3, "oblique"), series_number=4)
    out = tmp_path / "out"
    formats = ("--output-format", "nifti", "rtstruct")
    assert (
        _predict([series.folder], out, tiny_checkpoint, *formats, "--deidentify", "--case-names", "hash") == 0
    )
    (record_path,) = out.glob("case-*.json")
    case = record_path.stem
    record = json.loads(record_path.read_text())
    assert record["outputs"]["rtstruct"] == [f"{case}.rtstruct.dcm"] and record["formats"] == [
        "nifti",
        "rtstruct",
    ]
    path = out / f"{case}.rtstruct.dcm"
    assert dciodvfy_errors(path) == []
    rt = pydicom.dcmread(path)
    assert rt.PatientID.startswith("ANON-") and "Doe" not in path.read_bytes().decode("latin-1")
    assert [r.ROIName for r in rt.StructureSetROISequence] == [
        "liver",
        "spleen",
        "kidney_right",
        "kidney_left",
        "vertebra",
    ]
    source = read_image(series.folder)
    labels = np.asarray(read_image(out / f"{case}.nii.gz", kind="label").array[0])
    uids = [pseudonymous_uid(u, folder_key(out)) for u in source.meta["source_sop_instance_uids"]]
    masks = rasterise(rt, source, uids)
    for value, name in enumerate(["liver", "spleen", "kidney_right", "kidney_left", "vertebra"], start=1):
        if (labels == value).any():
            assert dice(masks[name], labels == value) >= 0.95, name


def test_rtstruct_of_a_nifti_input_fails_with_the_one_dicom_message(
    tmp_path: Path, tiny_checkpoint: Path
) -> None:
    write_nifti_cases(tmp_path / "data", ["ct"])
    out = tmp_path / "out"
    assert _predict([tmp_path / "data"], out, tiny_checkpoint, "--output-format", "nifti", "rtstruct") == 1
    reason = _summary(out / "summary.csv")["ct"]["reason"]
    assert (
        reason.startswith("rtstruct not written (")
        and "ct.nii.gz is a nifti image, not a DICOM series" in reason
    )
    assert "DICOM-SEG and RTSTRUCT can only be written for a DICOM input: choose nifti or mha" in reason
    assert sorted(p.name for p in out.iterdir()) == ["ct.json", "ct.nii.gz", "summary.csv"]
