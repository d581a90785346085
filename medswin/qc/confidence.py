"""Model confidence, gathered while the sliding window stitches (no second pass over the volume).

* ``confidence:<name>``: the mean top-class probability over the voxels the model gave that
  label (softmax cards; the region's own sigmoid probability for sigmoid cards), on the model's
  grid. A structure the model labelled while unsure is where a reader should look first. Cost: one
  log-sum-exp per stitched plane, measured by ``benchmarks/bench_qc.py``.
* ``agreement:<name>`` (with mirror test-time augmentation): the Dice between the labels of each
  flipped pass and those of the plain pass, per structure, pooled over every window. A model that
  labels a structure differently when the image is flipped has learnt position, not anatomy,
  and averaging its flips blurs that structure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from medswin.models.card import ModelCard
from medswin.qc.core import Check

__all__ = [
    "CONFIDENCE_LIMIT",
    "AGREEMENT_LIMIT",
    "ConfidenceGatherer",
    "AgreementGatherer",
    "confidence_checks",
    "agreement_checks",
]

#: warn when a structure's mean top-class probability is below this.
CONFIDENCE_LIMIT = 0.7
#: warn when a structure's Dice between flipped and plain passes is below this.
AGREEMENT_LIMIT = 0.8


class ConfidenceGatherer:
    """Sums of the top-class probability per label value over the planes the stitcher reduces.

    Call it with each blended block of logits ``(K, ...)`` and the labels reduced from it.
    """

    def __init__(self, card: ModelCard) -> None:
        self.card = card
        size = max(card.labels) + 1
        self._sums = np.zeros(size, dtype=np.float64)
        self._counts = np.zeros(size, dtype=np.int64)

    def __call__(self, logits: Any, labels: Any) -> None:
        import torch

        flat = labels.reshape(-1).to(torch.int64)
        if self.card.activation == "sigmoid":
            top = torch.zeros(flat.shape, dtype=torch.float32, device=logits.device)
            for region in self.card.regions:  # painted in order: the last region a voxel got wins
                chosen = flat == region.label
                top[chosen] = torch.sigmoid(logits[region.channel].reshape(-1)[chosen].float())
            top[flat == 0] = 1.0  # background of a sigmoid card has no probability of its own
        else:
            blended = logits.float()
            top = torch.exp(blended.amax(dim=0) - torch.logsumexp(blended, dim=0)).reshape(-1)
        size = len(self._sums)
        self._sums += torch.bincount(flat, weights=top.double(), minlength=size)[:size].cpu().numpy()
        self._counts += torch.bincount(flat, minlength=size)[:size].cpu().numpy()

    def means(self) -> dict[int, float]:
        """Label value -> mean top-class probability, for the labels that were predicted."""
        return {
            int(v): float(self._sums[v] / self._counts[v])
            for v in range(1, len(self._sums))
            if self._counts[v]
        }


class AgreementGatherer:
    """Pooled overlap, per label value, between the plain pass's labels and each flipped pass's."""

    def __init__(self, card: ModelCard) -> None:
        size = max(card.labels) + 1
        self._size = size
        self._overlap = np.zeros(size, dtype=np.int64)
        self._sizes = np.zeros(size, dtype=np.int64)

    def add(self, plain: Any, flipped: Any) -> None:
        """Both ``plain`` and ``flipped``: label tensors of the same window(s) on the same voxels."""
        import torch

        a = plain.reshape(-1).to(torch.int64)
        b = flipped.reshape(-1).to(torch.int64)
        size = self._size
        same = a[a == b]
        self._overlap += torch.bincount(same, minlength=size)[:size].cpu().numpy()
        self._sizes += (
            (torch.bincount(a, minlength=size)[:size] + torch.bincount(b, minlength=size)[:size])
            .cpu()
            .numpy()
        )

    def dice(self) -> dict[int, float]:
        """Label value -> Dice between plain and flipped passes, for labels either of them found."""
        return {
            v: float(2 * self._overlap[v] / self._sizes[v]) for v in range(1, self._size) if self._sizes[v]
        }


def _per_structure(
    card: ModelCard,
    kind: str,
    scores: dict[int, float],
    limit: float,
    ok: Callable[[str, float], str],
    low: Callable[[str, float], str],
) -> list[Check]:
    """One ``<kind>:<name>`` check per label: ``ok`` at or above ``limit``, else ``warn``."""
    checks = []
    for value, score in sorted(scores.items()):
        name = card.labels.get(value)
        if name is not None:
            verdict = "ok" if score >= limit else "warn"
            reason = (ok if verdict == "ok" else low)(name, score)
            checks.append(Check(f"{kind}:{name}", verdict, round(score, 3), limit, reason))
    return checks


def confidence_checks(
    card: ModelCard, means: dict[int, float], limit: float = CONFIDENCE_LIMIT
) -> list[Check]:
    return _per_structure(
        card,
        "confidence",
        means,
        limit,
        lambda name, mean: f"The model gave {name}'s voxels {100 * mean:.0f}% probability on average.",
        lambda name, mean: (
            f"The model was unsure of {name}: {100 * mean:.0f}% probability on average (below "
            f"{100 * limit:.0f}%); its outline and volume may be wrong, look at it."
        ),
    )


def agreement_checks(card: ModelCard, dice: dict[int, float], limit: float = AGREEMENT_LIMIT) -> list[Check]:
    return _per_structure(
        card,
        "agreement",
        dice,
        limit,
        lambda name, score: f"{name} is labelled alike when the image is flipped (Dice {score:.2f}).",
        lambda name, score: (
            f"{name} is labelled differently when the image is flipped (Dice {score:.2f}, below {limit:g}): "
            "the model follows position more than anatomy there; do not trust its --tta average."
        ),
    )
