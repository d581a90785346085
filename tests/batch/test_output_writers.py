"""``medswin predict --output-format`` with the registry's newer writers: surface meshes and RTSTRUCT."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import trimesh
from batch_factory import write_nifti_cases

from medswin.cli.main import main
from medswin.io import read_image


def _predict(inputs: list[Path], out: Path, model: Path, *extra: str) -> int:
    argv = ["-q", "predict", *(a for p in inputs for a in ("-i", str(p))), "-o", str(out), "-m", str(model)]
    return main([*argv, *extra])


def _summary(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as stream:
        return {row["case"]: row for row in csv.DictReader(stream)}


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
