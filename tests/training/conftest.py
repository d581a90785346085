"""Fixtures: CT phantoms on disk (nnU-Net layout + datalist) and a tiny card/pipeline pair."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_task import PHANTOM_SHAPE, PHANTOM_SPACING, tiny_card, tiny_pipeline, write_yaml

from medswin.data.builder import build_manifest
from medswin.data.manifest import write_json
from medswin.data.phantom_dataset import write_phantom_dataset


@pytest.fixture(scope="session")
def phantom_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four phantoms (LPS, RAS, oblique, LPS) with a 4-fold datalist; fold 0 holds one case."""
    folder = tmp_path_factory.mktemp("phantoms")
    write_phantom_dataset(folder, [21, 22, 23, 24], shape=PHANTOM_SHAPE, spacing=PHANTOM_SPACING)
    write_json(folder / "datalist.json", build_manifest(folder, folds=4, seed=0))
    return folder


@pytest.fixture
def tiny_setup(tmp_path: Path) -> tuple[Path, Path]:
    """``(card path, pipeline path)`` of the default tiny task in ``tmp_path``."""
    card_path = tmp_path / "tiny_card.json"
    card_path.write_text(json.dumps(tiny_card()))
    return card_path, write_yaml(tmp_path / "tiny.yaml", tiny_pipeline(card_path))
