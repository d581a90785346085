"""Shipped model cards: schema-valid, buildable, and carrying the published recipes."""

from __future__ import annotations

import numpy as np
import pytest

from medswin.models import list_presets, model_config, preset_card

TINY = {
    "swin_unetr": {"feature_size": 12},
    "swin_unet": {"embed_dim": 12},
    "attention_swin_unet": {"embed_dim": 12, "depths": [1, 1, 1, 1]},
}


def test_all_presets_are_shipped() -> None:
    assert set(list_presets()) >= {
        "swin_unetr_btcv",
        "swin_unetr_brats21",
        "swin_unet_synapse",
        "attention_swin_unet_isic",
    }


@pytest.mark.parametrize(
    "card_id", ["swin_unetr_btcv", "swin_unetr_brats21", "swin_unet_synapse", "attention_swin_unet_isic"]
)
def test_card_builds_a_matching_model(card_id: str) -> None:
    card = preset_card(card_id)
    config = model_config(card.architecture, **card.config)
    assert config.out_channels == card.num_classes
    assert config.in_channels == len(card.channels)
    spatial = getattr(config, "spatial_dims", 2)
    assert spatial == card.spatial_dims
    multiple = 32 if card.architecture == "swin_unetr" else config.patch_size * 2 ** (len(config.depths) - 1)
    assert all(s % multiple == 0 for s in card.roi_size)
    assert card.create_model(**TINY[card.architecture]) is not None
    assert card.provenance["source"] and card.provenance["reference"] and card.provenance["license"]


def test_btcv_card() -> None:
    card = preset_card("swin_unetr_btcv")
    assert card.labels == {
        0: "background",
        1: "spleen",
        2: "right kidney",
        3: "left kidney",
        4: "gallbladder",
        5: "esophagus",
        6: "liver",
        7: "stomach",
        8: "aorta",
        9: "inferior vena cava",
        10: "portal and splenic veins",
        11: "pancreas",
        12: "right adrenal gland",
        13: "left adrenal gland",
    }
    assert card.config["feature_size"] == 48 and card.config["legacy_merging"] is True
    assert card.orientation == "RAS" and card.spacing == (1.5, 1.5, 2.0)
    assert card.intensity == {
        "type": "window",
        "a_min": -175.0,
        "a_max": 250.0,
        "b_min": 0.0,
        "b_max": 1.0,
        "clip": True,
    }
    assert card.roi_size == (96, 96, 96) and card.overlap == 0.5 and card.activation == "softmax"


def test_brats_card_paints_brats2023_labels() -> None:
    card = preset_card("swin_unetr_brats21")
    assert card.channels == ["t2f", "t1c", "t1n", "t2w"]  # research-contributions: flair, t1ce, t1, t2
    assert card.activation == "sigmoid" and card.num_classes == 3
    assert card.config["feature_size"] == 48 and card.config["legacy_merging"] is True
    assert card.roi_size == (128, 128, 128) and card.overlap == 0.6
    assert card.spacing is None and card.orientation is None
    assert card.intensity == {"type": "zscore", "nonzero": True, "channel_wise": True}
    # network channels are TC, WT, ET; paint them in card order on a toy case
    tc = np.array([0, 0, 1, 1, 1, 0])
    wt = np.array([0, 1, 1, 1, 1, 1])
    et = np.array([0, 0, 0, 1, 0, 0])
    probs = np.stack([tc, wt, et]).astype(float)
    labels = np.zeros(6, dtype=int)
    for region in card.regions:
        labels[probs[region.channel] > 0.5] = region.label
    assert labels.tolist() == [0, 2, 1, 3, 1, 2]  # 1 NETC, 2 SNFH (edema), 3 ET
    assert (
        card.labels[1].startswith("NETC")
        and card.labels[2].startswith("SNFH")
        and card.labels[3].startswith("ET")
    )


def test_synapse_card() -> None:
    card = preset_card("swin_unet_synapse")
    assert card.num_classes == 9 and card.roi_size == (224, 224) and card.slice_axis == 2
    assert [card.labels[i] for i in range(1, 9)] == [
        "aorta", "gallbladder", "left kidney", "right kidney", "liver", "pancreas", "spleen", "stomach",
    ]  # fmt: skip
    assert card.intensity["a_min"] == -125.0 and card.intensity["a_max"] == 275.0


def test_isic_card() -> None:
    card = preset_card("attention_swin_unet_isic")
    assert card.channels == ["R", "G", "B"] and card.labels == {0: "background", 1: "lesion"}
    assert card.activation == "sigmoid" and card.num_classes == 1 and card.roi_size == (224, 224)
    assert card.config["depths"] == [2, 2, 6, 2] and card.config["skip_attention"] is True
