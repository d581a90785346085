"""Hostile ``-m`` models: nothing from a checkpoint is executed, and a bad model stops the run up front.

A checkpoint whose pickle would run code (``os.mkdir`` of a marker folder, in the torch zip format
and as a bare pickle, under ``.pt``, ``.safetensors`` and no extension), a medswin checkpoint whose
embedded card does not describe its weights, one whose card is not JSON, and a truncated one:
``medswin predict`` exits 2 with one line naming the file and the problem before any case is read
or any output folder made; ``medswin import-checkpoint`` refuses the pickles without running them.
Inputs stay byte-identical and nothing is written outside the (never created) output folder.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from hostile_factory import run_sandboxed, truncate, write_code_running_pickle, write_nifti
from safetensors import safe_open
from safetensors.torch import load_file, save_file


def _with_card(source: Path, target: Path, change: object) -> Path:
    """A copy of medswin checkpoint ``source`` whose embedded card JSON is ``change(card dict)`` (or text)."""
    with safe_open(str(source), framework="pt") as handle:
        metadata = dict(handle.metadata())
    card = json.loads(metadata["card"])
    changed = change(card) if callable(change) else change
    metadata["card"] = changed if isinstance(changed, str) else json.dumps(changed)
    save_file(load_file(str(source)), str(target), metadata=metadata)
    return target


def _wider(card: dict) -> dict:
    card["config"]["feature_size"] = 24
    return card


def _fewer_labels(card: dict) -> dict:
    card["labels"] = {"0": "background", "1": "liver"}
    card["config"]["out_channels"] = 2
    card.pop("colors", None)
    return card


def _label_named(name: str):
    def change(card: dict) -> dict:
        card["labels"]["1"] = name
        return card

    return change


def _huge_window(card: dict) -> dict:
    card.setdefault("inference", {})["roi_size"] = [1000, 1000, 1000]
    return card


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "inbox").mkdir()
    write_nifti(tmp_path / "inbox" / "ct.nii.gz")
    (tmp_path / "models").mkdir()
    return tmp_path


def _predict(workspace: Path, model: Path):
    argv = ["-q", "predict", "-i", str(workspace / "inbox"), "-o", str(workspace / "out"), "-m", str(model)]
    return run_sandboxed(argv, workspace, [workspace / "inbox", model])


@pytest.mark.parametrize(
    ("name", "torch_format", "problem"),
    [
        ("evil.pt", True, "a PyTorch file, not a medswin checkpoint"),
        ("evil.pth", False, "a PyTorch file, not a medswin checkpoint"),
        ("evil.safetensors", True, "not a readable .safetensors file"),
        ("evil_without_suffix", False, "not a readable .safetensors file"),
    ],
)
def test_predict_never_unpickles_a_model_file(
    workspace: Path, name: str, torch_format: bool, problem: str
) -> None:
    marker = workspace / "code_ran"
    model = write_code_running_pickle(workspace / "models" / name, marker, torch_format=torch_format)
    run = _predict(workspace, model)
    assert run.code == 2
    assert f"medswin: error: {model}: {problem}" in run.stderr
    assert not marker.exists()  # the payload never ran
    assert not (workspace / "out").exists()
    assert run.inputs_after == run.inputs_before and run.new_paths() == []


@pytest.mark.parametrize("torch_format", [True, False], ids=["torch-zip", "bare-pickle"])
def test_import_checkpoint_refuses_a_pickle_that_would_run_code(workspace: Path, torch_format: bool) -> None:
    marker = workspace / "code_ran"
    source = write_code_running_pickle(
        workspace / "models" / "official.pt", marker, torch_format=torch_format
    )
    target = workspace / "models" / "converted.safetensors"
    argv = ["import-checkpoint", str(source), "--preset", "demo", "-o", str(target)]
    run = run_sandboxed(argv, workspace, [source])
    assert run.code == 2
    assert f"medswin: error: {source}: refused or failed to load safely (weights_only)" in run.stderr
    assert (
        f"it references {os.mkdir.__module__}.mkdir" in run.stderr
        and "medswin never unpickles arbitrary objects" in run.stderr
    )
    assert not marker.exists() and not target.exists()
    assert run.inputs_after == run.inputs_before and run.new_paths() == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (_wider, r"weights do not match the model card 'tiny_robust' .*mismatched shape"),
        (_fewer_labels, r"weights do not match the model card 'tiny_robust' .*mismatched shape: out\.conv"),
        ("{ this is not json", r"\(embedded card\): not valid JSON"),
        # a newline in a label name would forge a line in stdout and in summary.csv's header
        (
            _label_named("liver\nforged,row"),
            r"labels/1: 'liver\\nforged,row' is not allowed: .*no control characters",
        ),
        (_label_named("../../etc"), r"labels/1: '\.\./\.\./etc' is not allowed: .*no path separators"),
        (
            _huge_window,
            r"roi_size \[1000, 1000, 1000\] is 1,000,000,000 voxels per window; at most 134,217,728",
        ),
    ],
    ids=["wider-network", "fewer-labels", "not-json", "newline-in-label", "path-in-label", "huge-window"],
)
def test_a_card_that_does_not_match_its_weights_stops_the_run(
    workspace: Path, tiny_checkpoint: Path, change: object, problem: str
) -> None:
    model = _with_card(tiny_checkpoint, workspace / "models" / "mismatched.safetensors", change)
    run = _predict(workspace, model)
    assert run.code == 2
    line = next(line for line in run.stderr.splitlines() if line.startswith("medswin: error:"))
    assert str(model) in line and re.search(problem, line), line
    assert not (workspace / "out").exists()
    assert run.inputs_after == run.inputs_before and run.new_paths() == []


def test_a_truncated_checkpoint_stops_the_run(workspace: Path, tiny_checkpoint: Path) -> None:
    model = workspace / "models" / "cut.safetensors"
    model.write_bytes(tiny_checkpoint.read_bytes())
    truncate(model, 0.5)
    run = _predict(workspace, model)
    assert run.code == 2
    assert f"medswin: error: {model}: " in run.stderr
    assert "cannot read tensors" in run.stderr or "not a readable .safetensors file" in run.stderr
    assert not (workspace / "out").exists() and run.new_paths() == []
