"""``medswin train`` end to end on tiny phantoms: checkpoint + card, metrics log, resume, init_from."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_task import PHANTOM_SHAPE, PHANTOM_SPACING, tiny_card, tiny_pipeline, write_yaml

from medswin.cli.main import main
from medswin.data.phantom import make_ct_phantom
from medswin.inference.predictor import Predictor
from medswin.models.checkpoints import load_checkpoint, read_checkpoint_card
from medswin.training.state import load_training_state


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as stream:
        return list(csv.DictReader(stream))


def test_train_writes_a_loadable_checkpoint_whose_card_says_how_it_was_made(
    phantom_data: Path, tiny_setup: tuple[Path, Path], tmp_path: Path, capsys
) -> None:
    _, pipeline = tiny_setup
    output = tmp_path / "run"
    arguments = [
        "train",
        "--pipeline",
        str(pipeline),
        "--data-root",
        str(phantom_data),
        "--output",
        str(output),
    ]
    assert main(arguments) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("trained tiny_phantom: 2 epoch(s); best mean validation Dice ")
    assert str(output / "best.safetensors") in printed

    model, card = load_checkpoint(output / "best.safetensors")
    assert card.id == "tiny_phantom" and card.labels[1] == "liver" and card.roi_size == (64, 32, 32)
    provenance = card.provenance
    assert provenance["pipeline"].startswith("tiny_phantom (tiny.yaml, sha256 ")
    assert provenance["seed"] == "3" and provenance["epochs"] in ("1", "2")
    assert "2 epochs" in provenance["training"] or "1 of 2 epochs" in provenance["training"]
    assert provenance["datalist"] == "datalist.json, fold 0: 3 training / 1 validation case(s)"
    scores = json.loads(provenance["validation_dice_json"])
    assert set(scores) == {"liver", "spleen", "kidney_right", "kidney_left", "vertebra"}
    assert all(0.0 <= v <= 1.0 for v in scores.values())
    assert provenance["date"].startswith("20") and provenance["sources"] == "test: tests/training/conftest.py"

    rows = _rows(output / "metrics.csv")
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert [r["global_step"] for r in rows] == ["3", "6"]
    assert all(r["val_liver"] and float(r["train_loss"]) > 0 for r in rows)
    best = max(float(r["val_dice_mean"]) for r in rows)
    assert float(np.mean(list(scores.values()))) == pytest.approx(best, abs=1e-5)

    # the checkpoint drives the Predictor like any medswin model
    case = make_ct_phantom(shape=PHANTOM_SHAPE, spacing=PHANTOM_SPACING, orientation="oblique", seed=77)
    prediction = Predictor(str(output / "best.safetensors")).predict(case.image)
    assert prediction.labels.same_grid(case.image)
    assert read_checkpoint_card(output / "last.safetensors").provenance["epochs"] == "2"
    assert isinstance(model, torch.nn.Module)


def test_resume_continues_from_the_saved_epoch(
    phantom_data: Path, tiny_setup: tuple[Path, Path], tmp_path: Path
) -> None:
    _, pipeline = tiny_setup
    output = tmp_path / "run"
    common = ["train", "--pipeline", str(pipeline), "--data-root", str(phantom_data), "--output", str(output)]
    assert main([*common, "--epochs", "1"]) == 0
    first = load_training_state(output)
    assert (first.epoch, first.global_step) == (1, 3)
    weights_after_one = load_checkpoint(output / "last.safetensors")[0].state_dict()

    assert main(common) == 2  # an existing run is never overwritten without --resume

    assert main([*common, "--epochs", "2", "--resume"]) == 0
    state = load_training_state(output)
    assert (state.epoch, state.global_step) == (2, 6)
    # Adam's step count continued from the restored optimiser state (3 + 3), not from zero
    assert all(float(entry["step"]) == 6.0 for entry in state.optimizer["state"].values())
    assert state.scheduler["last_epoch"] == 6
    rows = _rows(output / "metrics.csv")
    assert [r["epoch"] for r in rows] == ["1", "2"]
    resumed = load_checkpoint(output / "last.safetensors")[0].state_dict()
    assert any(not torch.equal(resumed[k], weights_after_one[k]) for k in resumed)
    assert read_checkpoint_card(output / "last.safetensors").provenance["epochs"] == "2"


def test_resume_refuses_mismatched_state(
    phantom_data: Path, tiny_setup: tuple[Path, Path], tmp_path: Path, capsys
) -> None:
    _, pipeline = tiny_setup
    output = tmp_path / "run"
    common = ["train", "--pipeline", str(pipeline), "--data-root", str(phantom_data), "--output", str(output)]
    assert main([*common, "--resume"]) == 2
    assert "no training state to resume" in capsys.readouterr().err
    assert main([*common, "--epochs", "1"]) == 0
    state = json.loads((output / "last_state.json").read_text())
    state["epoch"] = 5
    (output / "last_state.json").write_text(json.dumps(state))
    assert main([*common, "--epochs", "6", "--resume"]) == 2
    assert "resume is not safe" in capsys.readouterr().err


def test_init_from_an_official_style_checkpoint(phantom_data: Path, tmp_path: Path) -> None:
    card_path = tmp_path / "card.json"
    card_path.write_text(json.dumps(tiny_card()))
    from medswin.models.card import load_card

    torch.manual_seed(11)
    source = load_card(card_path).create_model()
    official = {  # research-contributions layout: DDP prefix, numpy metric beside the weights
        "epoch": 10,
        "best_acc": np.float64(0.5),
        "state_dict": {f"module.{k}": v for k, v in source.state_dict().items()},
    }
    torch.save(official, tmp_path / "official.pt")
    pipeline = write_yaml(
        tmp_path / "p.yaml",
        tiny_pipeline(
            card_path,
            model={
                "card": str(card_path),
                "init_from": {"checkpoint": "official.pt", "key_map": "swin_unetr_research"},
            },
            optimizer={"type": "adamw", "lr": 0.0, "weight_decay": 0.0},
            training={"epochs": 1, "val_every": 1, "device": "cpu"},
        ),
    )
    output = tmp_path / "run"
    assert (
        main(
            ["train", "--pipeline", str(pipeline), "--data-root", str(phantom_data), "--output", str(output)]
        )
        == 0
    )
    trained, card = load_checkpoint(output / "best.safetensors")
    for key, value in source.state_dict().items():  # lr 0: the weights are exactly the initial ones
        assert torch.equal(trained.state_dict()[key], value), key
    assert card.provenance["init_from"].startswith(
        "official.pt via key map swin_unetr_research: 159 tensors loaded"
    )


def test_bad_inputs_fail_with_clear_messages(
    phantom_data: Path, tiny_setup: tuple[Path, Path], tmp_path: Path, capsys
) -> None:
    card_path, pipeline = tiny_setup
    output = tmp_path / "run"
    assert main(["train", "--pipeline", str(pipeline), "--output", str(output)]) == 2
    assert "needs --data-root" in capsys.readouterr().err
    wrong_labels = write_yaml(
        tmp_path / "w.yaml",
        tiny_pipeline(
            card_path, data={"datalist": "{data_root}/datalist.json", "fold": 0, "label_remap": {"5": 9}}
        ),
    )
    assert (
        main(
            [
                "train",
                "--pipeline",
                str(wrong_labels),
                "--data-root",
                str(phantom_data),
                "--output",
                str(output),
            ]
        )
        == 2
    )
    assert "holds value(s) [9] that model card 'tiny_phantom' does not declare" in capsys.readouterr().err
    (tmp_path / "broken.yaml").write_text(
        "name: x\nsources: {a: b}\nmodel: {card: demo}\ndata: {}\ntraining: {epochs: 0}\n"
    )
    assert main(["train", "--pipeline", str(tmp_path / "broken.yaml"), "--output", str(output)]) == 2
    assert "invalid pipeline document at training/epochs" in capsys.readouterr().err
