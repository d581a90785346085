"""Tiny checkpoints for the robustness suite (one model window per case), built once per session.

Helpers live in ``hostile_factory`` (a uniquely named module); this file only defines fixtures,
so that ``from conftest import ...`` elsewhere in the tree never picks these up by accident.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hostile_factory import MODALITIES

from medswin.models import preset_card, save_checkpoint


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo card's labels on a random feature-size-12 SwinUNETR with 64x32x32 windows."""
    card = preset_card("demo").replace(id="tiny_robust", roi_size=(64, 32, 32), spacing=(3.0, 3.0, 5.0))
    torch.manual_seed(0)
    return save_checkpoint(card.create_model(), card, tmp_path_factory.mktemp("model") / "tiny.safetensors")


@pytest.fixture(scope="session")
def tiny_multimodal_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same network taking four input channels (a BraTS-like MR model)."""
    demo = preset_card("demo")
    card = demo.replace(
        id="tiny_robust_mm",
        channels=list(MODALITIES),
        config={**demo.config, "in_channels": len(MODALITIES)},
        modality="MR",
        roi_size=(64, 32, 32),
        spacing=(3.0, 3.0, 5.0),
    )
    torch.manual_seed(1)
    return save_checkpoint(
        card.create_model(), card, tmp_path_factory.mktemp("model_mm") / "tiny_mm.safetensors"
    )
