"""``medswin manifest``: build a datalist from a folder, refuse to overwrite, check one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medswin.cli.main import main
from medswin.data.phantom_dataset import write_phantom_dataset


@pytest.fixture
def phantom_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "Dataset001_Phantom"
    write_phantom_dataset(folder, [11, 12, 13, 14], shape=(12, 10, 8), spacing=(3.0, 3.0, 4.0))
    return folder


def test_manifest_builds_checks_and_refuses_to_overwrite(
    phantom_folder: Path, tmp_path: Path, capsys
) -> None:
    output = tmp_path / "lists" / "datalist.json"
    assert main(["manifest", str(phantom_folder), "-o", str(output), "--folds", "2"]) == 0
    assert "4 training case(s) in 2 folds" in capsys.readouterr().out
    document = json.loads(output.read_text())
    assert document["name"] == "medswin CT phantoms" and document["labels"]["5"] == "vertebra"
    assert sorted(e["fold"] for e in document["training"]) == [0, 0, 1, 1]

    before = output.read_text()
    assert main(["manifest", str(phantom_folder), "-o", str(output)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert output.read_text() == before

    assert main(["manifest", "--check", str(output), "--data-root", str(phantom_folder), "--geometry"]) == 0
    assert "4 training, 0 validation, 0 test case(s), folds [0, 1]" in capsys.readouterr().out
    # paths are relative to the dataset folder, so without --data-root they are not found
    assert main(["manifest", "--check", str(output)]) == 2
    assert "not found under data root" in capsys.readouterr().err


def test_manifest_errors_are_clear(phantom_folder: Path, tmp_path: Path, capsys) -> None:
    (phantom_folder / "labelsTr" / "phantom_00012.nii.gz").unlink()
    assert main(["manifest", str(phantom_folder), "-o", str(tmp_path / "d.json")]) == 2
    assert "have no label in labelsTr/ (e.g. phantom_00012" in capsys.readouterr().err
    assert not (tmp_path / "d.json").exists()
    assert main(["manifest", "-o", str(tmp_path / "d.json")]) == 2
    assert "give a dataset FOLDER" in capsys.readouterr().err
