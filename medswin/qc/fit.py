"""Fit to the card, recorded: :func:`medswin.models.fit.check_fit` turned into quality checks.

``check_fit`` says, before a run, when an image is not what the model learnt from; here every one
of its checks becomes a :class:`~medswin.qc.core.Check` (``fit:modality``, ``fit:intensity``,
``fit:spacing``, ``fit:field_of_view``) with the measured value and the limit, so the verdict is
kept in the case's record and not only logged. A check with nothing to say is recorded as ``ok``.
An input that makes the output meaningless (another modality, an almost blank image) is ``fail``;
one that makes it less reliable (thick slices, a small field of view, no air in a CT) is ``warn``.
"""

from __future__ import annotations

from collections.abc import Sequence

from medswin.io.image import Image
from medswin.models.card import ModelCard
from medswin.models.fit import COARSER_SPACING_FACTOR, FitWarning, check_fit
from medswin.qc.core import Check

__all__ = ["fit_checks"]


def _sentence(text: str) -> str:
    text = text.strip()
    return (text[:1].upper() + text[1:]).rstrip(".") + "."


def _from_warning(warning: FitWarning) -> Check:
    return Check(
        f"fit:{warning.check}",
        "fail" if warning.severe else "warn",
        warning.value,
        warning.limit,
        _sentence(warning.message),
    )


def _per_patient_axis(orientation: str, values: Sequence[float]) -> list[float]:
    """``values`` given per array axis of ``orientation``, reordered left-right, front-back, head-feet."""
    axis = {"R": 0, "L": 0, "A": 1, "P": 1, "S": 2, "I": 2}
    ordered = [0.0, 0.0, 0.0]
    for code, value in zip(orientation, values, strict=False):
        ordered[axis[code]] = round(float(value), 3)
    return ordered


def _passed(name: str, image: Image, card: ModelCard) -> Check | None:
    """The ``ok`` check of a fit test that found nothing (None when the test does not apply)."""
    geometry = card.slice_axis is None and card.spatial_dims == image.spatial_dims == 3
    if name == "modality":
        found = str(image.meta.get("modality", "") or "not stated")
        return Check(
            "fit:modality", "ok", found, card.modality, f"Modality {found}; the model takes {card.modality}."
        )
    if name == "intensity":
        return Check(
            "fit:intensity", "ok", None, None, "Intensities look like what the model was trained on."
        )
    if name == "spacing" and geometry:
        spacing = _per_patient_axis(image.orientation, image.spacing)
        limit = None
        if card.spacing is not None:
            model = _per_patient_axis(card.orientation or image.orientation, card.spacing)
            limit = [round(COARSER_SPACING_FACTOR * s, 3) for s in model]
        shown = " x ".join(f"{s:g}" for s in spacing)
        reason = f"Voxels of {shown} mm (left-right x front-back x head-feet) suit the model."
        return Check("fit:spacing", "ok", spacing, limit, reason)
    if name == "field_of_view" and geometry:
        extent = _per_patient_axis(
            image.orientation, [n * s for n, s in zip(image.shape, image.spacing, strict=True)]
        )
        shown = " x ".join(f"{e:g}" for e in extent)
        reason = f"The image covers {shown} mm (left-right x front-back x head-feet), enough for the model."
        return Check("fit:field_of_view", "ok", extent, None, reason)
    return None


def fit_checks(image: Image, card: ModelCard) -> list[Check]:
    """Every fit test of ``image`` against ``card`` as a recorded check (warnings first, in ``check_fit``'s order)."""
    warnings = check_fit(image, card)
    checks = [_from_warning(w) for w in warnings]
    found = {w.check for w in warnings}
    for name in ("modality", "intensity", "spacing", "field_of_view"):
        if name not in found:
            passed = _passed(name, image, card)
            if passed is not None:
                checks.append(passed)
    return checks
