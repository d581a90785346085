"""What kind of image is this: one spelling of modality names, one rule for "CT in Hounsfield units".

DICOM files name their modality with a code (Modality (0008,0060): ``CT``, ``MR``, ``PT``, ``DX``...),
model cards and users write words (``MRI``, ``CTA``); :func:`modality_code` folds both into the code
medswin compares. Files without a modality (NIfTI, NRRD) are told apart by their intensities:
:func:`looks_like_hounsfield` is the one rule the fit check, the quality checks and the viewer use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "MODALITY_ALIASES",
    "HounsfieldProfile",
    "hounsfield_profile",
    "looks_like_hounsfield",
    "modality_code",
    "same_modality",
]

#: other spellings -> the DICOM Modality code medswin compares. The projection radiography codes
#: (computed, digital, angiographic X-ray) all read ``XR``: a film model takes any of them.
MODALITY_ALIASES = {"MRI": "MR", "CTA": "CT", "PET": "PT", "XA": "XR", "CR": "XR", "DX": "XR"}

# HU bands (inclusive low, exclusive high). Air and lung lie far below anything else a scanner
# writes; fat (-150..-50 HU, noise spreads it) is the one tissue CT puts below water; soft tissue,
# blood and enhanced kidneys lie near water; cortical and trabecular bone above 300 HU.
_AIR_BELOW = -500.0
_FAT = (-200.0, -30.0)
_SOFT_TISSUE = (-30.0, 200.0)
_PARENCHYMA = (
    10.0,
    100.0,
)  # brain, liver, muscle: soft tissue above water, not the zero of an empty background
_BONE = (300.0, 3100.0)
# a band holds "some" of the voxels from this share on (a lean body crop has little fat; a vertebra is small)
_SOME = 0.005
# a CT's 12-bit range ends at 3071 HU; an image whose brightest 0.5 % go far beyond is not HU
# (MR, PET and raw stored values reach thousands), unless it has air (metal on the extended scale)
_HIGHEST_HU = 4000.0
_SAMPLE_VOXELS = 1_000_000


def modality_code(text: str) -> str:
    """The code medswin compares for a DICOM Modality or a card's word: ``"mri"`` -> ``"MR"``, ``"DX"`` -> ``"XR"``."""
    code = str(text).strip().upper()
    return MODALITY_ALIASES.get(code, code)


def same_modality(first: str, second: str) -> bool:
    """Whether two modality names (codes or words) mean the same modality."""
    return modality_code(first) == modality_code(second)


@dataclass(frozen=True)
class HounsfieldProfile:
    """What the HU rule looks at: the 0.5th/99.5th percentiles and the shares of voxels in each HU band.

    Shares are of the finite voxels of a strided sample (about a million voxels of a large volume).
    """

    low: float
    high: float
    fat: float
    soft_tissue: float
    parenchyma: float
    bone: float
    negative: float

    def reason(self) -> str:
        """Why :func:`looks_like_hounsfield` decided as it did, with the numbers (for a warning)."""
        bands = (
            f"{100 * self.fat:.1f}% fat-like (-200..-30), {100 * self.soft_tissue:.1f}% soft-tissue-like "
            f"(-30..200), {100 * self.bone:.1f}% bone-like (300..3100)"
        )
        if self.low <= _AIR_BELOW:
            return f"air near -1000 HU (0.5th percentile {self.low:.0f})"
        if looks_like_hounsfield(self):
            return f"no air, but {bands}: a CT cropped to the body"
        return f"no air near -1000 HU (0.5th percentile {self.low:.0f}) and {bands}"


def hounsfield_profile(values: Any) -> HounsfieldProfile | None:
    """The :class:`HounsfieldProfile` of an array (any shape); None when it holds no finite value."""
    values = np.asarray(values).reshape(-1)
    step = max(1, values.size // _SAMPLE_VOXELS)
    sample = values[::step].astype(np.float64)
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return None
    low, high = (float(v) for v in np.percentile(sample, (0.5, 99.5)))

    def share(lower: float, upper: float) -> float:
        return float(np.count_nonzero((sample >= lower) & (sample < upper))) / sample.size

    return HounsfieldProfile(
        low=low,
        high=high,
        fat=share(*_FAT),
        soft_tissue=share(*_SOFT_TISSUE),
        parenchyma=share(*_PARENCHYMA),
        bone=share(*_BONE),
        negative=float(np.count_nonzero(sample < 0.0)) / sample.size,
    )


def looks_like_hounsfield(values: Any) -> bool:
    """Whether intensities look like a CT in Hounsfield units (an array, or its :class:`HounsfieldProfile`).

    A CT with air around or in the body (lung, bowel gas) has its 0.5th percentile far below
    -500 HU; MR, PET, radiographs and rescaled data have nothing that low. A CT cropped to the body
    (a common NIfTI export) has no air, so the air test alone calls it "not HU"; it is recognised by
    its tissue mix instead: a fifth or more of the voxels near water (-30..200 HU) and, below water,
    fat (-200..-30 HU); or, for a crop with little fat (a head), bone (300..3100 HU) and soft tissue
    above water (10..100 HU) together with some negative values (noise around water, CSF). MR
    magnitudes, PET and raw stored CT values are never negative and have no fat band, an MR's dark
    background sits at 0 rather than at tissue values, and a bright tail beyond 4000 is not HU.
    """
    profile = values if isinstance(values, HounsfieldProfile) else hounsfield_profile(values)
    if profile is None:
        return False
    if profile.low <= _AIR_BELOW:
        return True
    if profile.high > _HIGHEST_HU or profile.soft_tissue < 0.2:
        return False
    if profile.fat >= _SOME:
        return True
    return profile.bone >= _SOME and profile.parenchyma >= 0.1 and profile.negative >= 0.001
