"""Tiny checkpoints (one window per case); cases come from challenge_factory."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from medswin.models import load_card, preset_card, save_checkpoint

REPOSITORY = Path(__file__).resolve().parents[2]


def _save(card, path: Path) -> Path:
    torch.manual_seed(0)
    return save_checkpoint(card.create_model(), card, path)


@pytest.fixture(scope="session")
def brats_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The BraTS 2021 card (4 channels t2f/t1c/t1n/t2w, sigmoid TC/WT/ET) at feature size 12."""
    card = preset_card("swin_unetr_brats21")
    card = card.replace(
        id="brats_tiny",
        config={**card.config, "feature_size": 12, "legacy_merging": False},
        roi_size=(64, 64, 32),
    )
    return _save(card, tmp_path_factory.mktemp("brats") / "brats_tiny.safetensors")


@pytest.fixture(scope="session")
def msd_brain_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The MSD Task01 recipe's card (FLAIR, T1w, t1gd, T2w; edema / non-enhancing / enhancing)."""
    card = load_card(REPOSITORY / "pipelines" / "train" / "cards" / "msd_task01_brain_tumour.json")
    card = card.replace(id="msd_tiny", config={**card.config, "feature_size": 12}, roi_size=(64, 64, 32))
    return _save(card, tmp_path_factory.mktemp("msd") / "msd_tiny.safetensors")


@pytest.fixture(scope="session")
def ct_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    card = preset_card("demo").replace(id="ct_tiny", roi_size=(64, 32, 32), spacing=(3.0, 3.0, 5.0))
    return _save(card, tmp_path_factory.mktemp("ct") / "ct_tiny.safetensors")
