"""Each published file's card describes that file: its size, its recipe, its own score."""

from __future__ import annotations

import pytest

from medswin.weights.registry import list_weights


@pytest.mark.parametrize("entry", list_weights(), ids=lambda e: e.name)
def test_card_describes_its_own_file(entry) -> None:  # noqa: ANN001
    card = entry.model_card()
    size = card.config.get("feature_size")
    if size is not None:
        assert f"feature_size {size}" in card.description or f"feature size {size}" in card.description
    ssl_initialised = "self-supervised" in card.provenance.get(
        "training", ""
    ) and "no self-supervised" not in (card.provenance.get("training", "") + card.description)
    # the research Base model was fine-tuned from the SSL encoder; Small, Tiny and the bundle were not
    assert ssl_initialised == (entry.name == "swin_unetr_btcv"), card.provenance.get("training")
    assert card.provenance["published_score"] == entry.score["text"]
    assert card.provenance["license"].startswith(entry.license)


def test_the_bundle_says_how_its_score_and_weights_were_made() -> None:
    (bundle,) = [e for e in list_weights() if e.name == "swin_unetr_btcv_bundle"]
    card = bundle.model_card()
    assert "overlap 0.25" in bundle.score["text"] and "last 9 of the 30" in bundle.score["text"]
    assert "500 epochs" in card.provenance["training"] and "Adam lr 2e-4" in card.provenance["training"]
    assert "MONAI 1.2-era" in card.provenance["legacy_merging"]
    assert "constant blending" in card.provenance["inference"]


def test_the_ssl_encoder_says_which_window_it_saw() -> None:
    (ssl,) = [e for e in list_weights() if e.name == "swin_unetr_ssl"]
    card = ssl.model_card()
    assert "-1000..1000 HU" in card.provenance["preprocessing"]
    assert "0.9.0rc3" in card.provenance["legacy_merging"]
