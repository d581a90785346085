"""Grand Challenge container I/O: the entrypoint run with /input and /output redirected."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from challenge_factory import REPOSITORY, ct_case

from medswin.cli.main import main
from medswin.io import read_image, write_image

JOB_IMAGE = "1c3a4e52-3d49-4f8e-9a0e-6f1f6c3b5a77.mha"


def _job_input(root: Path) -> Path:
    write_image(ct_case(4), root / "images" / "ct-image" / JOB_IMAGE, dtype=np.int16)
    manifest = [
        {
            "interface": {"slug": "ct-image", "kind": "Image", "relative_path": "images/ct-image"},
            "value": None,
        },
        {
            "interface": {"slug": "age-in-years", "kind": "Integer", "relative_path": "age-in-years.json"},
            "value": 63,
        },
    ]
    (root / "inputs.json").write_text(json.dumps(manifest))
    return root


def test_entrypoint_writes_the_output_socket_and_results(tmp_path: Path, ct_checkpoint: Path) -> None:
    inputs = _job_input(tmp_path / "input")
    out = tmp_path / "output"
    out.mkdir()
    environment = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(REPOSITORY),
        "MEDSWIN_INPUT": str(inputs),
        "MEDSWIN_OUTPUT": str(out),
        "MEDSWIN_MODEL": str(ct_checkpoint),
    }
    entrypoint = REPOSITORY / "pipelines" / "grand_challenge" / "entrypoint.sh"
    done = subprocess.run(
        ["bash", str(entrypoint)], env=environment, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    [written] = list((out / "images" / "segmentation").glob("*.mha"))
    labels = read_image(written, kind="label")
    assert labels.same_grid(read_image(inputs / "images" / "ct-image" / JOB_IMAGE), atol_mm=1e-4)
    results = json.loads((out / "results.json").read_text())
    assert results["model"] == "ct_tiny" and results["inputs"] == {"ct-image": JOB_IMAGE}
    assert results["output"] == f"images/segmentation/{written.name}"
    counts = np.bincount(np.asarray(labels.array).ravel(), minlength=6)
    assert results["volumes_ml"]["liver"] == np.float64(counts[1] * np.prod(labels.spacing) / 1000).item()
    assert sorted(p.name for p in out.iterdir()) == ["images", "results.json"]  # no staging left


def test_ambiguous_socket_fails_the_job_with_nothing_written(
    tmp_path: Path, ct_checkpoint: Path, capsys
) -> None:
    inputs = _job_input(tmp_path / "input")
    write_image(ct_case(5), inputs / "images" / "ct-image" / "second.mha")
    out = tmp_path / "output"
    argv = ["submit", "grand-challenge", "-i", str(inputs), "-o", str(out), "-m", str(ct_checkpoint)]
    assert main(argv) == 2
    assert "expected exactly one image" in capsys.readouterr().err
    assert not out.exists() or not any(out.rglob("*"))
