"""Does an image fit a model? Warnings (never refusals) from the card against the image's own metadata.

A model runs on anything with the right number of channels, and its output looks confident either
way; these checks say, before a run, when the input is not what the card says the model learnt from:

* **modality**: the image's DICOM ``Modality`` (``meta["modality"]``) against the card's;
* **intensity**: a CT model expects Hounsfield units (:func:`medswin.io.modality.looks_like_hounsfield`:
  air near -1000 HU, or the fat and soft tissue of a CT cropped to the body); an MR model does not;
  a CT window that every voxel falls outside of sees a blank image;
* **spacing**: voxels much coarser than the model's (it then sees upsampled, blurred structures);
* **field of view**: an image smaller than one model window along an axis (a crop, or a
  localiser), compared per patient axis so file axis order does not matter.

Front ends show the warnings and run anyway; :func:`check_fit` is pure (no torch, no files).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from medswin.io.image import Image
from medswin.io.modality import hounsfield_profile, looks_like_hounsfield, modality_code
from medswin.models.card import ModelCard
from medswin.tasks import task_for

__all__ = ["FitWarning", "check_fit", "COARSER_SPACING_FACTOR", "SMALLEST_WINDOW_FRACTION"]

#: warn when an image's voxels are more than this many times the card's spacing along an axis.
COARSER_SPACING_FACTOR = 2.0
#: warn when an image covers less than this fraction of one model window (mm) along an axis.
SMALLEST_WINDOW_FRACTION = 0.5
_SAMPLE_VOXELS = 1_000_000
#: what a CT in HU shows, as recorded with an intensity warning (the rule: looks_like_hounsfield)
_HU_EVIDENCE = "air (0.5th percentile <= -500 HU), or fat and soft tissue without air"
# the patient axis an orientation letter runs along, and its name
_PATIENT_AXIS = {"R": 0, "L": 0, "A": 1, "P": 1, "S": 2, "I": 2}
_AXIS_NAMES = ("left-right", "front-back", "head-feet")


@dataclass(frozen=True)
class FitWarning:
    """One reason an image may not suit a model.

    Attributes:
        check: ``"channels"``, ``"modality"``, ``"intensity"``, ``"spacing"`` or ``"field_of_view"``.
        message: the reason, in a sentence naming the numbers compared.
        value: what was measured (e.g. the voxel size in mm), for the recorded quality check.
        limit: what it was compared with (e.g. the largest voxel size the model is trusted on).
        severe: the result is most likely meaningless (another modality, an almost blank image),
            not merely less reliable; :mod:`medswin.qc` records it as ``fail`` instead of ``warn``.
    """

    check: str
    message: str
    value: Any = None
    limit: Any = None
    severe: bool = False

    def __str__(self) -> str:
        return self.message


def _sample(image: Image) -> np.ndarray:
    values = np.asarray(image.array).reshape(-1)
    step = max(1, values.size // _SAMPLE_VOXELS)
    sample = values[::step].astype(np.float64)
    return sample[np.isfinite(sample)]


def _per_patient_axis(image: Image, values: tuple[float, ...], orientation: str | None) -> dict[int, float]:
    """``values`` given per array axis of ``orientation`` (a card's), as patient axis -> value."""
    if orientation is None:  # the card keeps the input's axes: values are per image axis
        orientation = image.orientation
    return {_PATIENT_AXIS[code]: float(v) for code, v in zip(orientation, values, strict=False)}


def _intensity_warnings(image: Image, card: ModelCard) -> list[FitWarning]:
    sample = _sample(image)
    profile = hounsfield_profile(sample)
    if profile is None:
        return [FitWarning("intensity", "the image has no finite voxel values", severe=True)]
    low, high = profile.low, profile.high
    warnings = []
    modality = modality_code(card.modality)
    looks_hu = looks_like_hounsfield(profile)
    if modality == "CT" and not looks_hu:
        warnings.append(
            FitWarning(
                "intensity",
                f"intensities {low:.0f}..{high:.0f} do not look like CT Hounsfield units ({profile.reason()}); "
                "the model was trained on HU",
                [round(low, 1), round(high, 1)],
                _HU_EVIDENCE,
            )
        )
    elif modality == "MR" and looks_hu and modality_code(str(image.meta.get("modality", ""))) != "MR":
        warnings.append(
            FitWarning(
                "intensity",
                f"intensities {low:.0f}..{high:.0f} look like CT Hounsfield units ({profile.reason()}); "
                "the model was trained on MRI",
                [round(low, 1), round(high, 1)],
                f"neither {_HU_EVIDENCE}",
                severe=True,
            )
        )
    window = card.intensity
    if window.get("type") == "window" and window.get("clip", False):
        a_min, a_max = float(window["a_min"]), float(window["a_max"])
        inside = np.count_nonzero((sample >= a_min) & (sample <= a_max)) / sample.size
        if inside < 0.01:
            warnings.append(
                FitWarning(
                    "intensity",
                    f"{100 * inside:.1f}% of the voxels lie inside the model's window {a_min:g}..{a_max:g}: "
                    "it would see an almost blank image",
                    round(inside, 4),
                    0.01,
                    severe=True,
                )
            )
    return warnings


def _geometry_warnings(image: Image, card: ModelCard) -> list[FitWarning]:
    if card.slice_axis is not None or card.spatial_dims != image.spatial_dims or image.spatial_dims != 3:
        return []  # 2D models on slices, radiographs: their cards give no 3D geometry to compare
    spacing = dict(zip((_PATIENT_AXIS[c] for c in image.orientation), image.spacing, strict=True))
    extent = dict(
        zip(
            (_PATIENT_AXIS[c] for c in image.orientation),
            (n * s for n, s in zip(image.shape, image.spacing, strict=True)),
            strict=True,
        )
    )
    model_spacing = (
        _per_patient_axis(image, card.spacing, card.orientation)
        if card.spacing is not None
        else dict(spacing)
    )
    roi = _per_patient_axis(image, tuple(float(r) for r in card.roi_size), card.orientation)
    warnings = []
    for axis in range(3):
        if spacing[axis] > COARSER_SPACING_FACTOR * model_spacing[axis]:
            warnings.append(
                FitWarning(
                    "spacing",
                    f"voxels are {spacing[axis]:.2f} mm {_AXIS_NAMES[axis]}, coarser than the model's "
                    f"{model_spacing[axis]:.2f} mm: small structures may be missed and volumes are unreliable "
                    "(thick voxels blur every organ's edge)",
                    round(spacing[axis], 3),
                    round(COARSER_SPACING_FACTOR * model_spacing[axis], 3),
                )
            )
    for axis in range(3):
        window_mm = roi[axis] * model_spacing[axis]
        if extent[axis] < SMALLEST_WINDOW_FRACTION * window_mm:
            warnings.append(
                FitWarning(
                    "field_of_view",
                    f"the image covers {extent[axis]:.0f} mm {_AXIS_NAMES[axis]}, under half of the model's "
                    f"{window_mm:.0f} mm window: it was trained on larger views"
                    + (f" of the {card.body_region}" if card.body_region else ""),
                    round(extent[axis], 1),
                    round(SMALLEST_WINDOW_FRACTION * window_mm, 1),
                )
            )
    return warnings


def check_fit(image: Image, card: ModelCard) -> list[FitWarning]:
    """Reasons ``image`` may not suit the model ``card`` describes; empty when nothing is off.

    Args:
        image: the input, ``(C, X, Y[, Z])`` with its geometry and ``meta`` (``modality`` from DICOM).
        card: the model's card (modality, channels, intensity preprocessing, spacing, roi size).

    Returns:
        warnings in the order channels, modality, intensity, spacing, field of view.
    """
    warnings: list[FitWarning] = []
    if task_for(card).image_channels and image.num_channels != len(card.channels):
        warnings.append(
            FitWarning(
                "channels",
                f"the model takes {len(card.channels)} channel(s) ({', '.join(card.channels)}), the image has "
                f"{image.num_channels}",
                image.num_channels,
                len(card.channels),
                severe=True,
            )
        )
    found = modality_code(str(image.meta.get("modality", "")))
    expected = modality_code(card.modality)
    if found and expected and found != expected:
        warnings.append(
            FitWarning(
                "modality",
                f"the image is {found} (DICOM Modality), the model was trained on {expected}",
                found,
                expected,
                severe=True,
            )
        )
    if image.kind == "intensity":
        warnings.extend(_intensity_warnings(image, card))
    warnings.extend(_geometry_warnings(image, card))
    return warnings
