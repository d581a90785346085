"""Every shipped training pipeline loads, names its sources, and fits the card it trains."""

from __future__ import annotations

from pathlib import Path

import pytest

from medswin.errors import ManifestError
from medswin.training.config import load_pipeline, parse_pipeline

PIPELINES = sorted((Path(__file__).resolve().parents[2] / "pipelines" / "train").glob("*.yaml"))


def test_required_pipelines_exist() -> None:
    names = {p.stem for p in PIPELINES}
    assert {
        "btcv_swin_unetr",
        "brats21_swin_unetr",
        "brats23_swin_unetr",
        "msd_task09_spleen_swin_unetr",
        "msd_task01_brain_tumour_swin_unetr",
        "synapse_swin_unet",
        "isic_attention_swin_unet",
        "demo_phantom",
    } <= names


@pytest.mark.parametrize("path", PIPELINES, ids=lambda p: p.stem)
def test_pipeline_loads_and_fits_its_card(path: Path) -> None:
    pipeline = load_pipeline(path)
    assert pipeline.name == path.stem
    card = pipeline.base_card()
    assert card.id == pipeline.model_id
    assert len(pipeline.settings["sources"]) >= 1
    datalist = pipeline.settings["data"]["datalist"]
    if datalist and "{data_root}" not in datalist:
        assert pipeline.resolve_path(datalist).is_file(), datalist
    roi = pipeline.settings["augmentation"]["crop"]["roi_size"]
    assert roi is None or len(roi) == card.spatial_dims


def test_recipe_numbers_from_the_reference_notes() -> None:
    by_name = {p.stem: load_pipeline(p).settings for p in PIPELINES}
    btcv = by_name["btcv_swin_unetr"]
    assert (btcv["optimizer"]["type"], btcv["optimizer"]["lr"], btcv["optimizer"]["weight_decay"]) == (
        "adamw",
        1e-4,
        1e-5,
    )
    assert (btcv["scheduler"]["warmup_epochs"], btcv["training"]["epochs"]) == (50, 5000)
    assert btcv["augmentation"]["crop"]["roi_size"] == [96, 96, 96]
    brats = by_name["brats21_swin_unetr"]
    assert brats["training"]["epochs"] == 300 and brats["augmentation"]["crop"]["roi_size"] == [128, 128, 128]
    assert brats["loss"]["type"] == "dice" and brats["data"]["label_remap"] == {4: 3}
    synapse = by_name["synapse_swin_unet"]
    assert (synapse["optimizer"]["type"], synapse["optimizer"]["lr"], synapse["optimizer"]["momentum"]) == (
        "sgd",
        0.05,
        0.9,
    )
    assert synapse["optimizer"]["weight_decay"] == 1e-4 and synapse["scheduler"]["type"] == "poly"
    assert (synapse["loss"]["lambda_ce"], synapse["loss"]["lambda_dice"]) == (0.4, 0.6)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model": {"card": "swin_unetr_brats21"}}, "data.regions must say which labels"),
        ({"data": {"regions": [{"name": "x", "labels": [1]}]}}, "only for sigmoid"),
        ({"augmentation": {"crop": {"roi_size": [96, 96]}}}, "has 2 axes; the model is 3D"),
        ({"model": {"card": "demo", "config": {"use_checkpoint": True}}}, "training.gradient_checkpointing"),
        ({"model": {"card": "no_such_card"}}, "no shipped model card"),
        ({"optimizer": {"lr": "1e-4"}}, "optimizer/lr"),
    ],
)
def test_inconsistent_pipelines_are_refused(change: dict, message: str) -> None:
    document = {
        "name": "x",
        "sources": {"a": "b"},
        "model": {"card": "demo"},
        "data": {},
        "training": {"epochs": 1},
    }
    for key, value in change.items():
        document[key] = {**document.get(key, {}), **value}
    with pytest.raises(ManifestError, match=message):
        parse_pipeline(document, source="x.yaml")
