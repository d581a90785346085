"""Pelvic landmarks in millimetres: ASIS, pubic tubercles, PSIS, ischial spines and the anterior pelvic plane.

The landmarks Swin-X2S evaluates (after Fischer et al. 2019): anterior superior iliac spines
(ASIS), pubic tubercles (PT), posterior superior iliac spines (PSIS) and ischial spines (IS), left
and right; the error is the distance between predicted and reference landmarks (the official
pipeline in voxels of its 2.6 mm grid, here in mm).

Method (own implementation), on the surface of each hip bone:

1. Anterior pelvic plane (APP): starting from the patient's coronal plane, the most anterior
   point of each hip's upper lateral quarter (above and lateral to the bone's centroid) is its
   ASIS and of its lower medial quarter its PT; the plane through both ASIS and the PTs' midpoint
   gives a new "anterior" direction and the search repeats until the four points stop changing
   (the plane then touches the pelvis at them). Tips are the centroid of the surface within half
   a voxel of the extreme.
2. In that frame: PSIS = the most posterior point of each hip's upper half; IS = the most medial
   point of each hip's lower posterior quarter.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from medswin.errors import MetricInputError
from medswin.io.image import Image
from medswin.metrics.morphometry._geometry import (
    LEFT,
    POSTERIOR,
    SUPERIOR,
    MorphometryResult,
    label_geometry,
    unit,
)

__all__ = ["PelvisLandmarks", "pelvis_landmarks"]

ANTERIOR = -POSTERIOR


@dataclass
class PelvisLandmarks(MorphometryResult):
    """Pelvic landmarks (LPS millimetres) and the anterior pelvic plane.

    Attributes:
        asis_left_mm / asis_right_mm: anterior superior iliac spines.
        pubic_tubercle_left_mm / pubic_tubercle_right_mm: pubic tubercles.
        psis_left_mm / psis_right_mm: posterior superior iliac spines.
        ischial_spine_left_mm / ischial_spine_right_mm: ischial spines.
        app_normal: unit normal of the anterior pelvic plane, pointing anteriorly.
        inter_asis_mm: distance between the two ASIS.
        pelvic_tilt_deg: angle of the APP from the patient's coronal plane about the left-right
            axis; positive when the ASIS lie anterior to the pubic tubercles.
        iterations: APP refinements until the landmarks stopped moving.
    """

    asis_left_mm: np.ndarray = field(metadata={"kind": "point"})
    asis_right_mm: np.ndarray = field(metadata={"kind": "point"})
    pubic_tubercle_left_mm: np.ndarray = field(metadata={"kind": "point"})
    pubic_tubercle_right_mm: np.ndarray = field(metadata={"kind": "point"})
    psis_left_mm: np.ndarray = field(metadata={"kind": "point"})
    psis_right_mm: np.ndarray = field(metadata={"kind": "point"})
    ischial_spine_left_mm: np.ndarray = field(metadata={"kind": "point"})
    ischial_spine_right_mm: np.ndarray = field(metadata={"kind": "point"})
    app_normal: np.ndarray = field(metadata={"kind": "axis"})
    inter_asis_mm: float = field(metadata={"kind": "scalar"})
    pelvic_tilt_deg: float = field(metadata={"kind": "scalar"})
    iterations: int = field(metadata={})


def _extreme(
    points: np.ndarray, select: np.ndarray, direction: np.ndarray, what: str, cap_mm: float
) -> np.ndarray:
    """The extreme point of ``points[select]`` along ``direction``: centroid of the surface within
    ``cap_mm`` of the extreme (a rounded tip has a flat-ish cap of many near-equal vertices)."""
    if not select.any():
        raise MetricInputError(f"pelvis: no surface in the region of the {what}")
    candidates = points[select]
    reach = candidates @ direction
    return candidates[reach >= reach.max() - cap_mm].mean(0)


def pelvis_landmarks(
    image: Image, left: int = 52, right: int = 51, max_iterations: int = 20
) -> PelvisLandmarks:
    """ASIS, PT, PSIS and IS of both hip bones, and the anterior pelvic plane.

    Args:
        image: 3D label image (any orientation and spacing).
        left / right: label values of the left and right hip bones (TotalSeg-all: 52 and 51).
        max_iterations: limit of APP refinements.

    Raises:
        MetricInputError: a hip label is missing.
    """
    sides = {
        "left": label_geometry(image, left, "pelvis landmarks (left hip)"),
        "right": label_geometry(image, right, "pelvis landmarks (right hip)"),
    }
    cap = 0.5 * min(image.spacing)
    surface = {k: g.surface for k, g in sides.items()}
    centre = {k: g.voxels.mean(0) for k, g in sides.items()}
    outward = {"left": 1.0, "right": -1.0}  # sign of the lateral axis pointing away from the midline
    anterior, up, lateral = ANTERIOR, SUPERIOR, LEFT
    found: dict[str, np.ndarray] = {}
    iterations = 0
    while iterations < max_iterations:
        iterations += 1
        new = {}
        for side, points in surface.items():
            rel = points - centre[side]
            height, away = rel @ up, outward[side] * (rel @ lateral)
            new[f"asis_{side}"] = _extreme(points, (height > 0) & (away > 0), anterior, f"{side} ASIS", cap)
            new[f"pt_{side}"] = _extreme(
                points, (height < 0) & (away < 0), anterior, f"{side} pubic tubercle", cap
            )
        asis_mid = (new["asis_left"] + new["asis_right"]) / 2
        pt_mid = (new["pt_left"] + new["pt_right"]) / 2
        lateral = unit(new["asis_left"] - new["asis_right"])
        normal = unit(np.cross(lateral, asis_mid - pt_mid))
        if normal @ anterior < 0:
            normal = -normal
        stable = bool(found) and all(np.linalg.norm(found[k] - new[k]) < 1e-6 for k in new)
        found, anterior = new, normal
        up = unit(asis_mid - pt_mid - ((asis_mid - pt_mid) @ normal) * normal)
        if stable:
            break
    lateral = unit(np.cross(up, anterior))  # towards the patient's left
    if lateral @ LEFT < 0:
        lateral = -lateral
    landmarks = {}
    for side, points in surface.items():
        rel = points - centre[side]
        height, depth = rel @ up, rel @ anterior
        medial = -outward[side] * lateral
        landmarks[f"psis_{side}"] = _extreme(points, height > 0, -anterior, f"{side} PSIS", cap)
        posterior_low = (height < 0) & (depth < np.median(depth))
        landmarks[f"is_{side}"] = _extreme(points, posterior_low, medial, f"{side} ischial spine", cap)
    sagittal = anterior - (anterior @ LEFT) * LEFT
    tilt = float(np.degrees(np.arctan2(-(sagittal @ SUPERIOR), sagittal @ ANTERIOR)))
    return PelvisLandmarks(
        asis_left_mm=found["asis_left"],
        asis_right_mm=found["asis_right"],
        pubic_tubercle_left_mm=found["pt_left"],
        pubic_tubercle_right_mm=found["pt_right"],
        psis_left_mm=landmarks["psis_left"],
        psis_right_mm=landmarks["psis_right"],
        ischial_spine_left_mm=landmarks["is_left"],
        ischial_spine_right_mm=landmarks["is_right"],
        app_normal=anterior,
        inter_asis_mm=float(np.linalg.norm(found["asis_left"] - found["asis_right"])),
        pelvic_tilt_deg=tilt,
        iterations=iterations,
    )
