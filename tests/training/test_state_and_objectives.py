"""Training state round trip without pickles; learning-rate schedules; losses for both activations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from medswin.errors import CheckpointError
from medswin.models.card import preset_card
from medswin.training.objectives import LRSchedule, build_loss, build_optimizer, build_scheduler
from medswin.training.state import TrainingState, load_training_state, save_training_state


def _stepped(kind: str) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    model = torch.nn.Linear(3, 2)
    settings = {"type": kind, "lr": 0.1, "weight_decay": 1e-4, "momentum": 0.9, "nesterov": False}
    optimizer = build_optimizer(settings, model.parameters())
    for _ in range(3):
        optimizer.zero_grad()
        model(torch.randn(4, 3)).pow(2).sum().backward()
        optimizer.step()
    return model, optimizer


@pytest.mark.filterwarnings("ignore:Detected call of")
@pytest.mark.parametrize("kind", ["adamw", "sgd"])
def test_optimizer_and_scheduler_state_round_trip_through_safetensors_and_json(
    tmp_path: Path, kind: str
) -> None:
    model, optimizer = _stepped(kind)
    scheduler = build_scheduler(
        {"type": "warmup_cosine", "warmup_epochs": 1, "power": 0.9, "min_lr": 0.0},
        optimizer,
        steps_per_epoch=2,
        epochs=5,
        base_lr=0.1,
    )
    for _ in range(3):
        scheduler.step()
    state = TrainingState(4, 12, 0.8, 3, optimizer.state_dict(), scheduler.state_dict(), {}, "abc")
    save_training_state(tmp_path, state)
    assert not list(tmp_path.glob("*.tmp"))
    assert (
        json.loads((tmp_path / "last_state.json").read_text())["epoch"] == 4
    )  # plain JSON, no pickle anywhere
    back = load_training_state(tmp_path)
    assert (back.epoch, back.global_step, back.best_metric, back.best_epoch) == (4, 12, 0.8, 3)
    fresh = build_optimizer(
        {"type": kind, "lr": 0.1, "weight_decay": 1e-4, "momentum": 0.9, "nesterov": False},
        model.parameters(),
    )
    fresh.load_state_dict(back.optimizer)
    for saved, loaded in zip(
        optimizer.state_dict()["state"].values(), fresh.state_dict()["state"].values(), strict=True
    ):
        for name, value in saved.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(loaded[name])), name
    assert back.scheduler["last_epoch"] == 3


def test_missing_or_foreign_state_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no training state to resume"):
        load_training_state(tmp_path)
    (tmp_path / "last_state.json").write_text(json.dumps({"format": "other"}))
    (tmp_path / "last_state.safetensors").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="not a medswin training state"):
        load_training_state(tmp_path)


def test_lr_schedules() -> None:
    cosine = LRSchedule("warmup_cosine", total_steps=100, warmup_steps=10)
    assert cosine(0) == pytest.approx(1 / 11) and cosine(9) == pytest.approx(10 / 11)
    assert (
        cosine(10) == pytest.approx(1.0)
        and cosine(55) == pytest.approx(0.5)
        and cosine(100) == pytest.approx(0.0)
    )
    assert all(cosine(s) >= cosine(s + 1) for s in range(10, 100))
    poly = LRSchedule("poly", total_steps=100, power=0.9)
    assert poly(0) == 1.0 and poly(50) == pytest.approx(0.5**0.9) and poly(100) == 0.0
    assert LRSchedule("constant", 10)(7) == 1.0
    floored = LRSchedule("warmup_cosine", total_steps=10, min_ratio=0.1)
    assert floored(10) == pytest.approx(0.1)


def test_losses_for_softmax_and_sigmoid_cards() -> None:
    settings = {
        "type": "dice_ce",
        "include_background": True,
        "squared_pred": False,
        "batch": False,
        "lambda_dice": 0.6,
        "lambda_ce": 0.4,
    }
    softmax = build_loss(settings, preset_card("demo"))
    logits = torch.randn(2, 6, 8, 8, 8)
    labels = torch.randint(0, 6, (2, 1, 8, 8, 8)).float()
    perfect = torch.nn.functional.one_hot(labels[:, 0].long(), 6).permute(0, 4, 1, 2, 3).float() * 50
    assert softmax(perfect, labels) < 0.05 < softmax(logits, labels)
    sigmoid = build_loss({**settings, "type": "dice"}, preset_card("swin_unetr_brats21"))
    masks = (torch.rand(2, 3, 8, 8, 8) > 0.5).float()
    assert sigmoid((masks * 2 - 1) * 50, masks) < 0.01 < sigmoid(torch.randn(2, 3, 8, 8, 8), masks)
