"""A tiny SwinUNETR checkpoint (one 64x32x32 window per case); cases come from batch_factory."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "io"))

from medswin.models import preset_card, save_checkpoint  # noqa: E402


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo card's labels and colours on a random feature-size-12 SwinUNETR with 64x32x32 windows."""
    card = preset_card("demo").replace(id="tiny_batch", roi_size=(64, 32, 32), spacing=(3.0, 3.0, 5.0))
    torch.manual_seed(0)
    return save_checkpoint(card.create_model(), card, tmp_path_factory.mktemp("model") / "tiny.safetensors")
