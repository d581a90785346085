"""Preset cards of the published Swin-X2S models: the manifests' label maps and the official
geometry, and an official trainer checkpoint imported through the CLI predicting like its source."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from x2s_factory import phantom_pair, tiny_card, tiny_network

from medswin.cli.main import main
from medswin.inference.x2s import X2SPredictor
from medswin.models.card import list_presets, preset_card
from medswin.transforms.drr import DrrGeometry
from medswin.transforms.radiograph import drr_geometry

MANIFESTS = Path(__file__).parents[2] / "data_manifests"
PRESETS = sorted(c for c in list_presets() if c.startswith("swin_x2s_base_"))


def test_every_swin_x2s_dataset_has_a_preset() -> None:
    datasets = sorted(p.parent.name.removeprefix("x2s_") for p in MANIFESTS.glob("x2s_*/dataset.json"))
    assert [c.removeprefix("swin_x2s_base_") for c in PRESETS] == datasets


@pytest.mark.parametrize("card_id", PRESETS)
def test_preset_matches_its_manifest_and_the_official_geometry(card_id: str) -> None:
    card = preset_card(card_id)
    manifest = json.loads(
        (MANIFESTS / card_id.replace("swin_x2s_base_", "x2s_") / "dataset.json").read_text()
    )
    assert {str(k): v for k, v in card.labels.items()} == manifest["labels"]
    assert card.config["out_channels"] == manifest["out_channels"] == card.num_classes
    assert card.architecture == "swin_x2s_base" and card.roi_size == (128, 128, 160)
    geometry = drr_geometry(card)
    assert geometry == DrrGeometry()  # the official program's cube, distances and intensity
    assert card.radiographs["resize"] == ("bilinear" if card_id.endswith("ctspine1k") else "bicubic")


def test_an_official_checkpoint_imports_and_predicts_like_its_source(tmp_path: Path) -> None:
    """Trainer file layout: state_dict with fc1/fc2 and attn_mask, a numpy best_acc, optimizer state."""
    card = tiny_card()
    source = tiny_network(card, seed=7)
    official = {
        k.replace(".mlp.linear1.", ".mlp.fc1.").replace(".mlp.linear2.", ".mlp.fc2."): v.clone()
        for k, v in source.state_dict().items()
    }
    official["swinViT.layers.0.blocks.1.attn_mask"] = torch.zeros(25, 49, 49)
    checkpoint = tmp_path / "model.pt"
    torch.save(
        {"epoch": 240, "best_acc": np.float64(0.81), "state_dict": official, "optimizer": {}}, checkpoint
    )
    card_file = tmp_path / "card.json"
    card_file.write_text(card.to_json())
    out = tmp_path / "imported.safetensors"
    assert main(["import-checkpoint", str(checkpoint), "--card", str(card_file), "-o", str(out)]) == 0

    pair = phantom_pair(card, seed=1003)
    expected = X2SPredictor(source, card=card).predict(pair.ap, pair.lateral).labels.array
    imported = X2SPredictor(str(out)).predict(pair.ap, pair.lateral).labels.array
    np.testing.assert_array_equal(imported, expected)


def test_medswin_models_compares_parameter_counts_with_the_official_ones(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["models", "--json"]) == 0
    architectures = {a["name"]: a for a in json.loads(capsys.readouterr().out)["architectures"]}
    for variant in ("tiny", "small", "base", "large"):
        entry = architectures[f"swin_x2s_{variant}"]
        assert entry["parameters"] == entry["official_parameters"] > 0, variant
    assert architectures["swin_unetr"]["official_parameters"] is None
    assert main(["models", "--no-params"]) == 0
    assert "313,847,449" in capsys.readouterr().out
