"""``medswin evaluate`` refuses an image/label pair on different grids, case by case, explained.

A prediction folder and a reference folder where one pair matches and the others differ in
spacing, origin, direction or shape (and one holds NaN labels): the matching case is scored, each
other case is listed as failed with both file names and the difference, the run exits 1, only the
metrics CSV and its summary JSON are written, and the label folders stay byte-identical.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
from hostile_factory import CliRun, run_sandboxed

from medswin.data.phantom import make_ct_phantom
from medswin.io import Image, write_image, write_labels

SHAPE = (28, 24, 12)
SPACING = (2.4, 2.2, 5.0)


def _labels(seed: int = 0, orientation: str = "LPS", shape=SHAPE, spacing=SPACING) -> Image:
    return make_ct_phantom(shape=shape, spacing=spacing, orientation=orientation, seed=seed).labels  # type: ignore[arg-type]


def _moved(image: Image, millimetres: float) -> Image:
    origin = (image.origin[0] + millimetres, *image.origin[1:])
    return Image(image.array, image.spacing, origin, image.direction, "label", dict(image.meta))


def _mirrored(image: Image) -> Image:
    """Same voxels, spacing and origin; the first axis runs the other way."""
    direction = image.direction.copy()
    direction[:, 0] *= -1
    return Image(image.array, image.spacing, image.origin, direction, "label", dict(image.meta))


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> tuple[CliRun, Path, Path]:
    workspace = tmp_path_factory.mktemp("evaluate")
    pred, gt = workspace / "pred", workspace / "gt"
    reference = _labels()
    for case in ("ok", "spacing", "origin", "direction", "shape", "nan_labels"):
        write_labels(reference, gt / f"{case}.nii.gz")
    write_labels(reference, pred / "ok.nii.gz")
    write_labels(_labels(spacing=(2.4, 2.2, 4.0)), pred / "spacing.nii.gz")
    write_labels(_moved(reference, 3.0), pred / "origin.nii.gz")
    write_labels(_mirrored(reference), pred / "direction.nii.gz")
    write_labels(_labels(shape=(28, 24, 10)), pred / "shape.nii.gz")
    broken = reference.array.astype(np.float32)
    broken[0, 3, 3, 3] = np.nan
    write_image(reference.with_array(broken, kind="intensity"), pred / "nan_labels.nii.gz")
    argv = [
        "evaluate",
        "-q",
        "--pred",
        str(pred),
        "--gt",
        str(gt),
        "-o",
        str(workspace / "metrics" / "metrics.csv"),
    ]
    return run_sandboxed(argv, workspace, [pred, gt]), pred, gt


def test_matching_pair_is_scored_and_mismatched_pairs_fail_with_both_names(
    evaluated: tuple[CliRun, Path, Path],
) -> None:
    run, pred, gt = evaluated
    assert run.code == 1, run.stderr
    summary = json.loads((run.workspace / "metrics" / "metrics_summary.json").read_text())
    failed = {entry["case"]: entry["error"] for entry in summary["failed"]}
    assert sorted(failed) == ["direction", "nan_labels", "origin", "shape", "spacing"]
    for case, difference in (
        ("spacing", r"spacing \(2\.4.*, 4\.0\) vs \(2\.4.*, 5\.0\) mm"),
        ("origin", "origin .* vs .* mm"),
        ("direction", "direction "),
        ("shape", r"shape \(28, 24, 10\) vs \(28, 24, 12\)"),
    ):
        error = failed[case]
        assert str(pred / f"{case}.nii.gz") in error and str(gt / f"{case}.nii.gz") in error, error
        assert "are not on one grid" in error and re.search(difference, error), error
        assert f"medswin: case {case} failed: {error}" in run.stderr
    assert str(pred / "nan_labels.nii.gz") in failed["nan_labels"] and "NaN" in failed["nan_labels"]
    with open(run.workspace / "metrics" / "metrics.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    scored = {row["case"] for row in rows if row.get("dice") not in (None, "")}
    assert scored == {"ok"}


def test_evaluate_writes_only_its_reports_and_leaves_inputs_untouched(
    evaluated: tuple[CliRun, Path, Path],
) -> None:
    run, _, _ = evaluated
    assert run.inputs_after == run.inputs_before
    assert run.written_outside("metrics") == []
    assert sorted(p.name for p in (run.workspace / "metrics").iterdir()) == [
        "metrics.csv",
        "metrics_summary.json",
    ]
