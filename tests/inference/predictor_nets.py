"""Stand-in networks with known outputs, and tiny cards, for the predictor tests.

``IntensityNet`` labels each voxel by its windowed intensity, so the right answer on a noise-free
phantom is known voxel by voxel and any geometry slip (flip, swap, shift) shows up as wrong labels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from medswin.data.phantom import make_ct_phantom
from medswin.models import ModelCard, Region, preset_card

#: window of the test cards: HU -175..250 -> 0..1.
WINDOW = {"type": "window", "a_min": -175.0, "a_max": 250.0, "b_min": 0.0, "b_max": 1.0, "clip": True}
#: windowed-intensity bin edges: muscle/fat/air | liver | spleen | kidneys | vertebra.
EDGES = (0.53, 0.62, 0.76, 0.92)
#: phantom label -> label the IntensityNet card gives it (both kidneys have one intensity).
PHANTOM_TO_CARD = {0: 0, 1: 1, 2: 2, 3: 3, 4: 3, 5: 5}
CARD_LABELS = {0: "background", 1: "liver", 2: "spleen", 3: "kidney", 5: "vertebra"}
#: two thresholds between compact, high-contrast structures: soft organs (spleen, kidneys) | bone.
DENSE_EDGES = (0.6, 0.85)
DENSE_LABELS = {0: "background", 1: "dense", 2: "bone"}


class IntensityNet(torch.nn.Module):
    """One-hot logits (x10) of the intensity bin of channel 0; ``dims`` pins the input rank."""

    def __init__(self, edges: Sequence[float] = EDGES, dims: int | None = None) -> None:
        super().__init__()
        self.register_buffer("edges", torch.tensor(edges, dtype=torch.float32))
        self.dims = dims
        self.calls: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dims is not None and x.ndim != self.dims + 2:
            raise AssertionError(f"expected a {self.dims}D batch, got shape {tuple(x.shape)}")
        self.calls.append(tuple(x.shape))
        bins = torch.bucketize(x[:, 0].float().contiguous(), self.edges)
        return torch.nn.functional.one_hot(bins, len(self.edges) + 1).movedim(-1, 1).to(x.dtype) * 10


class RampNet(torch.nn.Module):
    """Channel 1 logit rises along every window axis: not mirror-symmetric, so TTA changes it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ramp = torch.zeros_like(x[:, :1])
        for axis in range(2, x.ndim):
            n = x.shape[axis]
            shape = [1] * x.ndim
            shape[axis] = n
            ramp = ramp + (torch.arange(n, dtype=x.dtype) - (n - 1) / 2).view(shape)
        return torch.cat([torch.zeros_like(ramp), ramp], dim=1)


class RegionNet(torch.nn.Module):
    """Sigmoid logits: channel 0 'dense' (spleen, kidneys, bone), channel 1 'bone' (vertebra)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :1]
        return torch.cat([(x - 0.62) * 50, (x - 0.92) * 50], dim=1)


def intensity_card(**changes: object) -> ModelCard:
    """A softmax card for IntensityNet (non-contiguous labels 0, 1, 2, 3, 5)."""
    base = ModelCard(
        id="intensity_test",
        architecture="swin_unetr",
        config={"in_channels": 1, "out_channels": 5, "feature_size": 12},
        channels=["CT"],
        labels=dict(CARD_LABELS),
        orientation="RAS",
        spacing=None,
        intensity=dict(WINDOW),
        roi_size=(32, 32, 32),
        overlap=0.5,
    )
    return base.replace(**changes) if changes else base


def region_card() -> ModelCard:
    return intensity_card(
        id="region_test",
        activation="sigmoid",
        labels={0: "background", 1: "dense", 2: "bone"},
        regions=[Region("dense", 0, 1), Region("bone", 1, 2)],
    )


def tiny_swin_card(**changes: object) -> ModelCard:
    """The BTCV card shrunk to a feature-size-12 SwinUNETR with 64x32x32 windows."""
    card = preset_card("swin_unetr_btcv")
    card = card.replace(
        id="btcv_tiny",
        config={**card.config, "feature_size": 12, "legacy_merging": False},
        roi_size=(64, 32, 32),
        spacing=(2.0, 2.0, 3.0),
    )
    return card.replace(**changes) if changes else card


def expected_labels(
    hu: np.ndarray, edges: Sequence[float] = EDGES, labels: Sequence[int] | None = None
) -> np.ndarray:
    """What IntensityNet must give for HU values ``hu`` (the card's window, then the bins)."""
    windowed = np.clip((hu + 175.0) / 425.0, 0.0, 1.0)
    bins = np.digitize(windowed, edges, right=True)
    return np.asarray(sorted(CARD_LABELS) if labels is None else labels, dtype=np.uint8)[bins]


def clean_phantom(orientation: str, shape=(40, 36, 24), spacing=(1.2, 0.9, 2.5), seed: int = 3):
    """Noise-free phantom: each organ has one intensity, so the expected labels are exact."""
    return make_ct_phantom(shape=shape, spacing=spacing, orientation=orientation, seed=seed, noise_hu=0.0)
