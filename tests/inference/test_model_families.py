"""Model families (:mod:`medswin.tasks`): every shipped card belongs to exactly one, a family's
exported tensors are what its networks take and give, and its predictor runs its models only."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from medswin.errors import MedSwinError
from medswin.inference.export import network_io
from medswin.models.card import ModelCard, list_presets, preset_card
from medswin.tasks import BIPLANAR, TASKS, VOLUME, task_for

sys.path.insert(0, str(Path(__file__).parents[1] / "x2s"))

from x2s_factory import tiny_card  # noqa: E402


def _tiny_cards() -> list[ModelCard]:
    """A small network of each family: the demo SwinUNETR (one 64x32x32 window) and a 64³ Swin-X2S."""
    volume = preset_card("demo").replace(id="tiny_volume", roi_size=(64, 32, 32))
    return [volume, tiny_card(64)]


def test_every_shipped_card_belongs_to_exactly_one_family() -> None:
    families = {
        card_id: [t.name for t in TASKS if t.claims(preset_card(card_id))] for card_id in list_presets()
    }
    assert all(len(names) == 1 for names in families.values()), families
    assert families["demo"] == ["volume"] and families["demo-x2s"] == ["biplanar"]
    assert {task_for(preset_card(card_id)).name for card_id in families} == {"volume", "biplanar"}


@pytest.mark.parametrize("card", _tiny_cards(), ids=lambda card: card.id)
def test_the_exported_tensors_are_what_the_network_takes_and_gives(card: ModelCard) -> None:
    inputs, outputs = network_io(card, batch_size=1)
    assert (inputs, outputs) == task_for(card).network_io(card, 1)
    torch.manual_seed(0)
    network = card.create_model().eval()
    with torch.no_grad():
        given = network(*(torch.rand(shape) for shape in inputs.values()))
    given = given if isinstance(given, tuple | list) else (given,)
    assert [tuple(t.shape) for t in given] == list(outputs.values())


def test_a_family_predictor_runs_its_models_and_names_the_command_for_the_others() -> None:
    cards = {task_for(card): card for card in _tiny_cards()}
    assert set(cards) == {VOLUME, BIPLANAR}
    for task in TASKS:
        for owner, card in cards.items():
            network = card.create_model()
            if owner is task:
                assert task.predictor()(network, card=card, device="cpu").card.id == card.id
                continue
            with pytest.raises(MedSwinError, match=r"\(or medswin\.inference") as refused:
                task.predictor()(network, card=card, device="cpu")
            assert f"model {card.id!r} ({card.architecture}) {owner.takes}" in str(refused.value)
            assert owner.run_with in str(refused.value)
