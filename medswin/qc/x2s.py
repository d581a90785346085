"""Quality checks of a Swin-X2S prediction: are the two films a real AP/lateral pair, and do the views agree?

A biplanar model cannot say "this film is mirrored" or "these are two copies of one film": it
reconstructs whatever it is given. Three things it computes anyway can:

* the two **prepared views** themselves: the same film given twice (or once mirrored) is near-identical
  after preparation, which no real AP/lateral pair is (:func:`same_film_similarity`; refused);
* the **agreement of the two branches**: the network predicts the volume once from the AP view and once
  from the lateral view and sums their logits. Per structure, the Dice between the two branches' own
  label volumes (:func:`view_agreement`) is high for a correct pair and collapses when the films are
  swapped or duplicated, because each branch then reconstructs the anatomy from a view it never saw;
* the **side** of each left/right structure (:func:`side_checks`): the output volume lies about the
  isocentre with X towards the patient's left, so a liver on the left means a mirrored AP film far more
  often than situs inversus.

The limits were set from ``benchmarks/bench_x2s_qc.py`` on the shipped ``demo-x2s`` model (README,
"Quality control", "X-ray pairs"); they are the defaults for every Swin-X2S card.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from medswin.io.image import Image
from medswin.qc.core import Check, QualityReport
from medswin.qc.sides import expected_side
from medswin.transforms.radiograph import UnusableRadiographError

__all__ = [
    "SAME_FILM_LIMIT",
    "AGREEMENT_LIMITS",
    "expected_side",
    "same_film_similarity",
    "refuse_same_film",
    "view_agreement",
    "agreement_checks",
    "side_checks",
    "volume_checks",
    "x2s_quality",
]

#: correlation of the two prepared views above which they are one film (20 real demo pairs: at most
#: 0.58; one film given twice: 1.000).
SAME_FILM_LIMIT = 0.98
#: (warn below, fail below) for the mean view agreement over the structures either branch found.
#: Measured on demo-x2s, 20 fresh phantom pairs each: correct 0.642-0.733, AP mirrored 0.467-0.690,
#: swapped 0.120-0.147, one film twice 0.132-0.279. Fail sits between the swapped/duplicated maximum
#: and the correct minimum; warn just below the correct minimum (it catches 4 of 20 mirrored films).
AGREEMENT_LIMITS = (0.6, 0.4)
#: a centroid this far (mm) across the midline is on the wrong side; closer is left unjudged.
SIDE_MARGIN_MM = 10.0


def same_film_similarity(front: np.ndarray, side: np.ndarray) -> float:
    """Pearson correlation of two prepared views, the larger of as-given and mirrored left-right.

    Views of different size (an AP ``(X, Z)`` and a lateral ``(Y, Z)`` of a non-cubic model) are
    compared on their common centre, which is where both crops of one film coincide.
    """
    rows = min(front.shape[0], side.shape[0])
    cols = min(front.shape[1], side.shape[1])

    def centre(view: np.ndarray) -> np.ndarray:
        top, left = (view.shape[0] - rows) // 2, (view.shape[1] - cols) // 2
        return np.asarray(view[top : top + rows, left : left + cols], dtype=np.float64)

    a, b = centre(front), centre(side)
    best = -1.0
    for other in (b, b[::-1]):
        if a.std() == 0 or other.std() == 0:
            continue
        best = max(best, float(np.corrcoef(a.ravel(), other.ravel())[0, 1]))
    return best


def refuse_same_film(front: np.ndarray, side: np.ndarray, where: tuple[str, str]) -> None:
    """Raise when the AP and lateral views are one film (the same picture given twice, or mirrored).

    Raises:
        UnusableRadiographError: naming both files.
    """
    similarity = same_film_similarity(front, side)
    if similarity > SAME_FILM_LIMIT:
        raise UnusableRadiographError(
            f"{where[0]} and {where[1]}: the AP and lateral films are the same picture (views correlate "
            f"{similarity:.3f} after preparation, limit {SAME_FILM_LIMIT}); a biplanar reconstruction needs "
            "a frontal and a lateral film of one patient"
        )


def view_agreement(labels_ap: Any, labels_lateral: Any, names: Mapping[int, str]) -> dict[str, float | None]:
    """Dice between the AP branch's and the lateral branch's own label volumes, per structure.

    Args:
        labels_ap, labels_lateral: label volumes (argmax of each branch's logits), numpy or torch, same shape.
        names: label value -> name (background included or not; value 0 is skipped).

    Returns:
        name -> Dice, ``None`` where neither branch found the structure.
    """
    a = np.asarray(labels_ap.cpu() if hasattr(labels_ap, "cpu") else labels_ap).ravel()
    b = np.asarray(labels_lateral.cpu() if hasattr(labels_lateral, "cpu") else labels_lateral).ravel()
    size = int(max(names, default=0)) + 1
    count_a = np.bincount(a, minlength=size)
    count_b = np.bincount(b, minlength=size)
    both = np.bincount(a[a == b], minlength=size)
    out: dict[str, float | None] = {}
    for value, name in sorted(names.items()):
        if value == 0:
            continue
        total = int(count_a[value] + count_b[value]) if value < size else 0
        out[name] = 2.0 * float(both[value]) / total if total else None
    return out


def agreement_checks(
    agreement: Mapping[str, float | None], limits: tuple[float, float] = AGREEMENT_LIMITS
) -> list[Check]:
    """The mean view agreement (the verdict) and each structure's (recorded, judged by the mean)."""
    found = [v for v in agreement.values() if v is not None]
    warn_below, fail_below = limits
    checks = []
    if found:
        mean = float(np.mean(found))
        verdict = "fail" if mean < fail_below else "warn" if mean < warn_below else "ok"
        worst = sorted((v, k) for k, v in agreement.items() if v is not None)[:2]
        named = ", ".join(f"{k} {v:.2f}" for v, k in worst)
        reasons = {
            "ok": f"The AP and lateral films agree on the anatomy (mean Dice {mean:.2f} between the two views' "
            "own reconstructions).",
            "warn": f"The AP and lateral films agree poorly on the anatomy (mean Dice {mean:.2f}, lowest {named}): "
            "check that the films are one patient's AP and lateral, neither mirrored nor swapped.",
            "fail": f"The AP and lateral films disagree on the anatomy (mean Dice {mean:.2f}, lowest {named}): "
            "the films are most likely swapped, duplicated or not one patient's pair; the volumes are unreliable.",
        }
        checks.append(Check("agreement", verdict, round(mean, 4), [warn_below, fail_below], reasons[verdict]))
    for name, value in agreement.items():
        if value is None:
            continue
        checks.append(
            Check(
                f"agreement:{name}",
                "ok",
                round(value, 4),
                None,
                f"The two views' reconstructions of the {name.replace('_', ' ')} overlap with Dice {value:.2f}.",
            )
        )
    return checks


def side_checks(labels: Image, names: Mapping[int, str], margin_mm: float = SIDE_MARGIN_MM) -> list[Check]:
    """Each one-sided structure's centroid against the midline (x = 0 on the X-ray output grid, LPS x = left)."""
    array = np.asarray(labels.array[0])
    checks = []
    for value, name in sorted(names.items()):
        side = expected_side(name) if value else None
        if side is None:
            continue
        voxels = np.argwhere(array == value)
        if not len(voxels):
            continue
        centroid = labels.lps_affine @ np.append(voxels.mean(axis=0), 1.0)
        left_mm = float(centroid[0])  # LPS: + is the patient's left
        found = "left" if left_mm > 0 else "right"
        wrong = found != side and abs(left_mm) > margin_mm
        organ = name.replace("_", " ")
        reason = (
            f"The {organ} lies on the patient's {found} ({abs(left_mm):.0f} mm from the midline), where it "
            f"belongs on the {side}: the AP film is most likely mirrored (left-right flipped or its orientation "
            "wrong) far more often than the patient has situs inversus; check the film's L/R marker."
            if wrong
            else f"The {organ} lies on the patient's {side} side, as expected."
        )
        checks.append(Check(f"sides:{name}", "fail" if wrong else "ok", round(left_mm, 1), side, reason))
    return checks


def volume_checks(labels: Image, names: Mapping[int, str], ranges: Mapping[str, Any] | None) -> list[Check]:
    """Each structure's volume against the card's plausible range (``volume_ranges_ml``), when it has one."""
    if not ranges:
        return []
    array = np.asarray(labels.array[0])
    counts = np.bincount(array.ravel().astype(np.int64), minlength=max(names, default=0) + 1)
    checks = []
    for value, name in sorted(names.items()):
        if not value or name not in ranges:
            continue
        low, high = (float(v) for v in ranges[name])
        ml = float(counts[value]) * labels.voxel_volume_ml if value < len(counts) else 0.0
        inside = low <= ml <= high
        organ = name.replace("_", " ")
        reason = (
            f"The {organ} measures {ml:.0f} mL, within the plausible {low:g}-{high:g} mL."
            if inside
            else f"The {organ} measures {ml:.0f} mL, outside the plausible {low:g}-{high:g} mL: the films' pixel "
            "size, their pairing or their orientation is likely wrong; do not use this volume."
        )
        checks.append(Check(f"volume:{name}", "ok" if inside else "warn", round(ml, 1), [low, high], reason))
    return checks


def x2s_quality(
    labels: Image,
    card: Any,
    agreement: Mapping[str, float | None],
) -> QualityReport:
    """All X-ray checks of one prediction: view agreement, sides, and volumes where the card has ranges."""
    names = {v: n for v, n in card.labels.items() if v}
    return QualityReport(
        (
            *agreement_checks(agreement),
            *side_checks(labels, names),
            *volume_checks(labels, names, card.volume_ranges_ml),
        )
    )
