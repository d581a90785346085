"""Sides: a left or right structure whose centre lies on the wrong side of the body's midline.

Which side a structure belongs on comes from its name: any name :mod:`medswin.io.anatomy` reads a
side from (``kidney_left``, ``right adrenal gland``), plus the liver (right), spleen and stomach
(left). The midline is the left-right centre of the body (every voxel denser than fat in a CT, or
brighter than a tenth of the bright end in other images) in physical LPS space, so the check
judges where the header puts the anatomy: a liver on the patient's left means a mirrored image or
a wrong orientation in the header far more often than situs inversus.

What it cannot catch: a model that labels by position rather than anatomy puts the liver on the
right whatever the image shows; the volume and confidence checks are what notice that.
"""

from __future__ import annotations

import numpy as np

from medswin.io.anatomy import find_structure
from medswin.io.image import Image
from medswin.io.modality import modality_code
from medswin.models.card import ModelCard
from medswin.qc.core import Check
from medswin.qc.structures import Structure

__all__ = ["EXPECTED_SIDES", "expected_side", "body_midline_mm", "side_checks"]

#: unpaired organs that lie on one side in (almost) every patient.
EXPECTED_SIDES = {"liver": "right", "spleen": "left", "stomach": "left"}
_SAMPLE_VOXELS = 2_000_000
_BODY_HU = -500.0  # denser than this is body in a CT (fat is about -100 HU, air -1000 HU)


def expected_side(name: str) -> str | None:
    """``"left"``, ``"right"`` or None for the structure called ``name``."""
    structure = find_structure(name)
    if structure is None:
        return None
    if structure.laterality is not None:
        return structure.laterality.meaning.lower()
    return EXPECTED_SIDES.get(structure.name)


def body_midline_mm(image: Image, card: ModelCard) -> float | None:
    """LPS x (mm; larger is the patient's left) of the body's left-right centre, None without a body."""
    volume = np.asarray(image.array[0])
    step = max(1, round((volume.size / _SAMPLE_VOXELS) ** (1 / volume.ndim)))
    sample = volume[(slice(None, None, step),) * volume.ndim]
    finite = sample[np.isfinite(sample)]
    if finite.size == 0:
        return None
    if modality_code(card.modality) == "CT" and np.percentile(finite, 0.5) <= _BODY_HU:
        body = sample > _BODY_HU
    else:
        low, high = np.percentile(finite, (1, 99))
        body = sample > low + 0.1 * (high - low)
    where = np.nonzero(body)
    if where[0].size == 0:
        return None
    index = np.array([w.mean() * step for w in where])
    lps = image.lps_affine
    return float(lps[0, :-1] @ index + lps[0, -1])


def side_checks(image: Image, structures: dict[int, Structure], card: ModelCard) -> list[Check]:
    """One ``sides:<name>`` check per found structure that has a side (3D images only)."""
    sided = {v: (s, expected_side(s.name)) for v, s in structures.items() if s.voxels and s.centroid_lps}
    sided = {v: (s, side) for v, (s, side) in sided.items() if side is not None}
    if image.spatial_dims != 3 or not sided:
        return []
    midline = body_midline_mm(image, card)
    if midline is None:
        return []
    checks = []
    for structure, side in sided.values():
        assert structure.centroid_lps is not None
        # distance towards the expected side: LPS x grows to the patient's left
        offset = structure.centroid_lps[0] - midline
        towards = round(offset if side == "left" else -offset, 1)
        name = structure.name
        if towards >= 0:
            reason = f"{name} lies {towards:g} mm to the patient's {side} of the midline, as expected."
            checks.append(Check(f"sides:{name}", "ok", towards, 0.0, reason))
            continue
        other = "left" if side == "right" else "right"
        checks.append(
            Check(
                f"sides:{name}",
                "fail",
                towards,
                0.0,
                f"{name} lies {-towards:g} mm on the patient's {other}, the wrong side of the midline: the image "
                "is most likely mirrored or its header's orientation is wrong (situs inversus is far rarer); "
                "check left and right before using any sided result.",
            )
        )
    return checks
