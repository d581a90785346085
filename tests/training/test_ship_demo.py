"""Shipping a demo model: refused below the Dice bar (nothing written), else float16 weights with
the run's provenance filled in."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from medswin.errors import MedSwinError
from medswin.models.card import preset_card
from medswin.models.checkpoints import load_checkpoint
from medswin.training.demo_model import TEST_SEEDS, ship_demo_model


def test_a_weak_model_is_refused_and_a_good_one_written(tmp_path: Path) -> None:
    card = preset_card("demo-x2s")
    model = card.create_model()
    out = tmp_path / "demo.safetensors"
    provenance = {"test_dice": "seeds {seeds}: {summary}"}
    with pytest.raises(MedSwinError, match="kidney_left 0.4000.*not writing"):
        ship_demo_model(
            model, card, {"liver": 0.9, "kidney_left": 0.4}, out, provenance, time.perf_counter(), "test", 0.6
        )
    assert not out.exists()
    ship_demo_model(
        model, card, {"liver": 0.9, "kidney_left": 0.7}, out, provenance, time.perf_counter(), "test", 0.6
    )
    loaded, shipped = load_checkpoint(out)
    assert (
        shipped.provenance["test_dice"]
        == f"seeds {', '.join(map(str, TEST_SEEDS))}: liver 0.9000, kidney_left 0.7000"
    )
    assert shipped.provenance["made_by"].startswith("test, ") and "float16" in shipped.provenance["weights"]
    assert shipped.provenance["geometry"] == card.provenance["geometry"]  # the card's own provenance is kept
    for key, value in model.state_dict().items():
        torch.testing.assert_close(
            loaded.state_dict()[key].float(), value.float()
        )  # the float16 values, exactly
