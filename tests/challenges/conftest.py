"""Tiny checkpoints (one window per case) and small MRI/CT cases in the challenges' layouts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from medswin.data.phantom import make_ct_phantom
from medswin.io import Image
from medswin.models import load_card, preset_card, save_checkpoint

REPOSITORY = Path(__file__).resolve().parents[2]
#: a brain-sized stand-in for the 240x240x155 SRI-24 grid: 1 mm voxels, LPS-flipped like BraTS.
MRI_SHAPE = (40, 44, 31)


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


def mri_channels(seed: int, channels: int = 4) -> list[Image]:
    """``channels`` co-registered made-up MRI volumes (1 mm, LPS-flipped grid) with a bright lesion."""
    rng = np.random.default_rng(seed)
    base = make_ct_phantom(shape=MRI_SHAPE, spacing=(1.0, 1.0, 1.0), orientation="LPS", seed=seed).image
    images = []
    for channel in range(channels):
        array = np.clip(base.array + 1000, 0, None) * (0.5 + 0.2 * channel) + rng.normal(
            0, 5, base.array.shape
        )
        images.append(base.with_array(array.astype(np.float32)))
    return images


def ct_case(seed: int) -> Image:
    return make_ct_phantom(
        shape=(28, 24, 12), spacing=(2.4, 2.2, 5.0), orientation="oblique", seed=seed
    ).image
