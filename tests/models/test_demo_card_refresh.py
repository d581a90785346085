"""The shipped demo checkpoint carries the shipped demo card, and refreshing a card keeps the weights."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file

from medswin.models import preset_card
from medswin.models.checkpoints import read_checkpoint_card, replace_checkpoint_card
from medswin.models.resolve import shipped_weights
from medswin.training.demo_model import main as demo_model


def _without_provenance(card) -> dict:
    data = card.to_dict()
    data.pop("provenance")
    return data


def test_the_shipped_demo_model_embeds_the_shipped_card_with_its_volume_ranges() -> None:
    embedded = read_checkpoint_card(shipped_weights("demo"))
    shipped = preset_card("demo")
    assert _without_provenance(embedded) == _without_provenance(shipped)
    assert embedded.volume_ranges_ml["liver"] == (160.0, 390.0)
    assert "seeds 0-299" in embedded.volume_ranges_source
    assert "test_dice" in embedded.provenance  # the training run's record is kept


def test_card_only_refreshes_an_old_checkpoint_and_keeps_every_tensor(tmp_path: Path) -> None:
    checkpoint = shutil.copy(shipped_weights("demo"), tmp_path / "demo.safetensors")
    old = read_checkpoint_card(checkpoint)
    replace_checkpoint_card(
        checkpoint, old.replace(volume_ranges_ml={}, volume_ranges_source="", intended_use="")
    )
    before = load_file(str(checkpoint))
    assert read_checkpoint_card(checkpoint).volume_ranges_ml == {}

    assert demo_model(["--card-only", "--output", str(checkpoint)]) == 0
    refreshed = read_checkpoint_card(checkpoint)
    assert refreshed.volume_ranges_ml == preset_card("demo").volume_ranges_ml
    assert refreshed.intended_use == preset_card("demo").intended_use
    assert refreshed.provenance["test_dice"] == old.provenance["test_dice"]
    after = load_file(str(checkpoint))
    assert before.keys() == after.keys()
    assert all(before[k].dtype == after[k].dtype and torch.equal(before[k], after[k]) for k in before)


def test_card_only_refuses_a_card_that_describes_another_network(tmp_path: Path) -> None:
    checkpoint = shutil.copy(shipped_weights("demo"), tmp_path / "demo.safetensors")
    card = read_checkpoint_card(checkpoint)
    relabelled = {**card.labels, 5: "spine"}
    replace_checkpoint_card(
        checkpoint, card.replace(labels=relabelled, volume_ranges_ml={}, volume_ranges_source="")
    )
    assert demo_model(["--card-only", "--output", str(checkpoint)]) == 1
    assert read_checkpoint_card(checkpoint).labels[5] == "spine"
