"""Model confidence and TTA agreement, gathered by ``Predictor.predict`` while it stitches.

Stand-in networks with known outputs (tests/inference/predictor_nets.py): ``IntensityNet`` labels
each voxel by its own intensity (sure of itself, and the same whichever way the image is flipped);
``RampNet`` labels by position in the window, so its flipped passes disagree with the plain one.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "inference"))

from predictor_nets import IntensityNet, RampNet, RegionNet, clean_phantom, intensity_card, region_card  # noqa: E402

from medswin.inference import Predictor  # noqa: E402


class UnsureNet(IntensityNet):
    """IntensityNet's labels with logits a hundred times flatter: the right labels, never sure of them."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) / 100


def _checks(prediction, kind: str) -> dict[str, tuple[str, float]]:
    return {
        c.name.split(":", 1)[1]: (c.verdict, c.value)
        for c in prediction.quality.checks
        if c.name.startswith(kind)
    }


def test_a_sure_network_is_confident_and_agrees_with_its_flips() -> None:
    case = clean_phantom("oblique")
    prediction = Predictor(IntensityNet(), card=intensity_card(), tta=True).predict(case.image)
    confidence = _checks(prediction, "confidence:")
    agreement = _checks(prediction, "agreement:")
    assert set(confidence) == set(agreement) == {"liver", "spleen", "kidney", "vertebra"}
    assert all(verdict == "ok" and value > 0.99 for verdict, value in confidence.values())
    assert all(verdict == "ok" and value == 1.0 for verdict, value in agreement.values())


def test_an_unsure_network_gets_a_confidence_warning_with_the_same_labels() -> None:
    case = clean_phantom("LPS")
    sure = Predictor(IntensityNet(), card=intensity_card()).predict(case.image)
    unsure = Predictor(UnsureNet(), card=intensity_card()).predict(case.image)
    assert (sure.labels.array == unsure.labels.array).all()
    confidence = _checks(unsure, "confidence:")
    assert all(verdict == "warn" and value < 0.3 for verdict, value in confidence.values())
    assert not _checks(unsure, "agreement:")  # measured only with --tta
    reason = next(c.reason for c in unsure.quality.checks if c.name == "confidence:liver")
    assert "unsure of liver" in reason


def test_a_network_that_labels_by_position_disagrees_with_its_flips() -> None:
    case = clean_phantom("LPS", shape=(24, 20, 16))
    card = intensity_card(
        labels={0: "background", 1: "ramp"},
        spacing=None,
        orientation=None,
        roi_size=(16, 16, 16),
        overlap=0.0,
    )
    prediction = Predictor(RampNet(), card=card, tta=True, mode="constant").predict(case.image)
    verdict, dice = _checks(prediction, "agreement:")["ramp"]
    assert verdict == "warn" and dice < 0.8
    assert "follows position" in next(
        c.reason for c in prediction.quality.checks if c.name == "agreement:ramp"
    )


def test_a_sigmoid_card_measures_each_regions_own_probability() -> None:
    case = clean_phantom("RAS")
    prediction = Predictor(RegionNet(), card=region_card()).predict(case.image)
    confidence = _checks(prediction, "confidence:")
    assert set(confidence) == {"dense", "bone"}
    assert all(0.5 <= value <= 1.0 for _, value in confidence.values())
