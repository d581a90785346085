"""Sigmoid region training (BraTS-style targets) and a 2D model trained on slices of volumes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from tiny_task import tiny_card, tiny_pipeline, write_yaml

from medswin.cli.main import main
from medswin.models.card import load_card
from medswin.models.checkpoints import load_checkpoint
from medswin.training.config import load_pipeline
from medswin.training.data import build_train_transforms, region_targets


def test_region_targets_follow_the_label_sets() -> None:
    label = torch.tensor([[[0, 1], [2, 3]]])
    masks = region_targets(label, [(1, 3), (1, 2, 3), (3,)])
    assert masks.shape == (3, 2, 2)
    np.testing.assert_array_equal(masks[0].numpy(), [[0, 1], [0, 1]])
    np.testing.assert_array_equal(masks[1].numpy(), [[0, 1], [1, 1]])
    np.testing.assert_array_equal(masks[2].numpy(), [[0, 0], [0, 1]])


def test_sigmoid_region_model_trains_and_is_scored_per_region(phantom_data: Path, tmp_path: Path) -> None:
    card = tiny_card(
        id="tiny_regions",
        activation="sigmoid",
        regions=[
            {"name": "kidneys", "channel": 0, "label": 3},
            {"name": "left_kidney", "channel": 1, "label": 4},
        ],
    )
    card["config"]["out_channels"] = 2
    card["labels"] = {"0": "background", "3": "kidney_right", "4": "kidney_left"}
    card_path = tmp_path / "card.json"
    card_path.write_text(json.dumps(card))
    document = tiny_pipeline(
        card_path,
        data={
            "datalist": "{data_root}/datalist.json",
            "fold": 0,
            "label_remap": {"1": 0, "2": 0, "5": 0},
            "regions": [{"name": "left_kidney", "labels": [4]}, {"name": "kidneys", "labels": [3, 4]}],
        },
        loss={"type": "dice", "include_background": True},
        training={"epochs": 1, "device": "cpu", "precision": "bf16"},
    )
    pipeline = write_yaml(tmp_path / "regions.yaml", document)
    deterministic, random = build_train_transforms(
        load_card(card_path), load_pipeline(pipeline).settings, [(3, 4), (4,)]
    )
    from medswin.data.manifest import load_datalist

    entry = load_datalist(phantom_data / "datalist.json").training[0]
    sample = random(deterministic({"case": entry}))[0]
    assert tuple(sample["label"].shape) == (2, 64, 32, 32)  # one mask per card channel, in channel order
    assert torch.all(sample["label"][1] <= sample["label"][0])  # left kidney is inside "kidneys"

    output = tmp_path / "run"
    assert (
        main(
            ["train", "--pipeline", str(pipeline), "--data-root", str(phantom_data), "--output", str(output)]
        )
        == 0
    )
    _, trained = load_checkpoint(output / "best.safetensors")
    assert trained.activation == "sigmoid"
    assert set(json.loads(trained.provenance["validation_dice_json"])) == {"kidneys", "left_kidney"}
    assert "precision bf16" in trained.provenance["training"]


def test_2d_model_trains_on_axial_slices_of_volumes(phantom_data: Path, tmp_path: Path) -> None:
    card = tiny_card(id="tiny_slices", architecture="swin_unet")
    card["config"] = {
        "in_channels": 1,
        "out_channels": 6,
        "img_size": 32,
        "embed_dim": 24,
        "depths": [1, 1, 1, 1],
        "num_heads": [1, 1, 1, 1],
        "window_size": 1,
        "drop_path_rate": 0.0,
    }
    card["inference"] = {"roi_size": [32, 32], "overlap": 0.0, "slice_axis": 2}
    card["preprocessing"]["spacing"] = [3.0, 3.0]
    card_path = tmp_path / "card.json"
    card_path.write_text(json.dumps(card))
    document = tiny_pipeline(
        card_path,
        augmentation={
            "crop": {"type": "random", "roi_size": [32, 32], "num_samples": 4},
            "rotate90": {"prob": 0.5},
        },
        training={"epochs": 1, "device": "cpu"},
    )
    pipeline = write_yaml(tmp_path / "slices.yaml", document)
    settings = load_pipeline(pipeline).settings
    deterministic, random = build_train_transforms(load_card(card_path), settings, None)
    from medswin.data.manifest import load_datalist

    entry = load_datalist(phantom_data / "datalist.json").training[0]
    samples = random(deterministic({"case": entry}))
    assert len(samples) == 4 and tuple(samples[0]["image"].shape) == (1, 32, 32)
    output = tmp_path / "run"
    assert (
        main(
            ["train", "--pipeline", str(pipeline), "--data-root", str(phantom_data), "--output", str(output)]
        )
        == 0
    )
    model, trained = load_checkpoint(output / "best.safetensors")
    assert trained.slice_axis == 2 and trained.architecture == "swin_unet"
