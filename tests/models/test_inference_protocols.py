"""Each preset card runs its source's inference protocol (blending, overlap, way back, activation).

The values are the sources' own (research-contributions SwinUNETR BTCV and BRATS21 ``test.py``, the
model-zoo BTCV bundle's ``inference.json``); a change to a card that drifts from them fails here.
"""

from __future__ import annotations

import pytest

from medswin.models import preset_card
from medswin.weights.registry import get_weights

#: (blend, overlap, resample, activation, threshold) as each source runs inference.
PROTOCOLS = {
    "swin_unetr_btcv": (
        "gaussian",
        0.5,
        "labels",
        "softmax",
        0.5,
    ),  # BTCV test.py: mode="gaussian", resample_3d
    "swin_unetr_brats21": ("constant", 0.6, "labels", "sigmoid", 0.5),  # BRATS21 test.py: default mode
}


@pytest.mark.parametrize("preset", sorted(PROTOCOLS))
def test_preset_protocol_matches_its_source(preset: str) -> None:
    card = preset_card(preset)
    assert (card.blend, card.overlap, card.resample, card.activation, card.threshold) == PROTOCOLS[preset]
    assert card.sigma_scale == 0.125  # MONAI's default sigma_scale, which both scripts use
    assert "test.py" in card.provenance["inference"]


def test_the_bundle_entry_runs_the_bundle_protocol() -> None:
    card = get_weights("swin_unetr_btcv_bundle").model_card()
    assert (card.blend, card.overlap, card.resample) == ("constant", 0.5, "probabilities")
    assert "Invertd" in card.provenance["inference"]


def test_published_entries_of_one_preset_keep_its_protocol() -> None:
    for name in ("swin_unetr_btcv", "swin_unetr_btcv_small", "swin_unetr_btcv_tiny"):
        card = get_weights(name).model_card()
        assert (card.blend, card.resample) == ("gaussian", "labels"), name
