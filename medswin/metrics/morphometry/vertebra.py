"""Vertebra morphometry in millimetres: body width, depth and heights, canal depth, spinous process length.

The vertebral parameters Swin-X2S evaluates (after Di Angelo & Di Stefano 2015): anterior and
posterior body height (AVBH, PVBH), body length (depth), vertebral canal length (the gap between
body and posterior arch) and spinous process length; the official pipeline measures them in voxels
of its 2.6 mm grid, these are in patient millimetres.

Method (own implementation): measurements are taken in a vertebra frame of the patient's
left-right axis and the local spine axis (through the neighbouring vertebrae's centroids when they
are labelled, so lordosis or kyphosis does not inflate the heights; else the patient's
cranio-caudal axis), from the image's geometry, so oblique scans are fine. In a band
around the mid-sagittal plane the bone along the antero-posterior axis is: the body, the
vertebral canal (empty), then the posterior arch ending in the spinous process. Distances come
from the mask's 0.5 iso-surface (half a voxel outside the boundary voxels). Axial rotation and
coronal (scoliotic) tilt are not corrected.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from medswin.errors import MetricInputError
from medswin.io.image import Image
from medswin.metrics.morphometry._geometry import (
    LEFT,
    SUPERIOR,
    MorphometryResult,
    angle_deg,
    label_geometry,
    unit,
)

__all__ = ["VertebraMorphometry", "vertebra_morphometry"]


@dataclass
class VertebraMorphometry(MorphometryResult):
    """Vertebra parameters (LPS millimetres and degrees).

    Attributes:
        body_centre_mm: centroid of the vertebral body.
        body_width_mm: left-right extent of the body.
        body_depth_mm: antero-posterior extent of the body at the mid-sagittal plane (body length).
        body_height_anterior_mm / body_height_posterior_mm: cranio-caudal extent of the body's
            anterior and posterior fifth at the mid-sagittal plane (AVBH, PVBH).
        canal_depth_mm: antero-posterior gap between body and posterior arch at the midline (VCL).
        spinous_process_length_mm: from the canal's posterior edge to the most posterior point at
            the midline (lamina and spinous process, SPL).
        height_axis: unit cranio-caudal axis used (pointing superiorly, in the sagittal plane).
        sagittal_tilt_deg: angle of ``height_axis`` from the patient's superior axis.
    """

    body_centre_mm: np.ndarray = field(metadata={"kind": "point"})
    body_width_mm: float = field(metadata={"kind": "scalar"})
    body_depth_mm: float = field(metadata={"kind": "scalar"})
    body_height_anterior_mm: float = field(metadata={"kind": "scalar"})
    body_height_posterior_mm: float = field(metadata={"kind": "scalar"})
    canal_depth_mm: float = field(metadata={"kind": "scalar"})
    spinous_process_length_mm: float = field(metadata={"kind": "scalar"})
    height_axis: np.ndarray = field(metadata={"kind": "axis"})
    sagittal_tilt_deg: float = field(metadata={"kind": "scalar"})


def _runs(occupied: np.ndarray) -> list[tuple[bool, int, int]]:
    """``(value, first, last)`` for each run of equal values."""
    runs, start = [], 0
    for i in range(1, len(occupied) + 1):
        if i == len(occupied) or occupied[i] != occupied[start]:
            runs.append((bool(occupied[start]), start, i - 1))
            start = i
    return runs


def _split_midline(y: np.ndarray, bin_mm: float) -> tuple[float, float]:
    """AP coordinates ``(body_back, arch_front)`` of the first empty run (the canal) behind the body."""
    low = y.min()
    counts = np.bincount(((y - low) / bin_mm).astype(int))
    runs = _runs(counts > 0)
    if len(runs) < 3 or runs[1][0]:
        raise MetricInputError(
            "vertebra: no vertebral canal at the mid-sagittal plane (body and posterior arch are not separated); "
            "is this a vertebra with a closed arch?"
        )
    _, first_gap, last_gap = runs[1]
    return low + first_gap * bin_mm, low + (last_gap + 1) * bin_mm


def _face(values: np.ndarray, tol: float, low: bool) -> float:
    """Position of the lowest (or highest) face: mean of the coordinates within ``tol`` of the extreme."""
    if low:
        return float(values[values < values.min() + tol].mean())
    return float(values[values > values.max() - tol].mean())


def _extent(values: np.ndarray, tol: float) -> float:
    return _face(values, tol, low=False) - _face(values, tol, low=True)


def _neighbour_axis(image: Image, label: int) -> np.ndarray | None:
    """Direction from the centroid of vertebra ``label + 1`` to that of ``label - 1`` if both are labelled.

    C1 has no upper neighbour (``label - 1`` is background, never a vertebra); callers whose label
    map puts other bones next to the spine (TotalSeg-all: L6 = 25, rib_left_1 = 26) pass ``height_axis``.
    """
    array = image.array[0]
    centroids = []
    for value in (label + 1, label - 1):
        idx = np.argwhere(array == value) if value > 0 else ()
        if len(idx) == 0:
            return None
        centroids.append(image.lps_affine[:3, :3] @ idx.mean(0) + image.lps_affine[:3, 3])
    return centroids[1] - centroids[0]


def vertebra_morphometry(
    image: Image, label: int = 1, height_axis: np.ndarray | None = None, band_mm: float | None = None
) -> VertebraMorphometry:
    """Body, canal and spinous process dimensions of one vertebra in a label image.

    Args:
        image: 3D label image (any orientation and spacing).
        label: the vertebra's label value (TotalSeg-all / VerSe: 1-25, C1 to L6, numbered cranio-caudally).
        height_axis: the local cranio-caudal axis of the spine (LPS). Default: the line through the
            centroids of the neighbouring vertebrae ``label - 1`` and ``label + 1`` when both are
            labelled (follows lordosis and kyphosis), else the patient's superior axis. Only its
            component in the sagittal plane is used.
        band_mm: half-width of the mid-sagittal band (default: 1.5 voxels, at least 2 mm).

    Raises:
        MetricInputError: the label is missing or no canal separates body and arch at the midline.
    """
    geometry = label_geometry(image, label, "vertebra morphometry")
    voxels, surface = geometry.voxels, geometry.surface
    largest = max(geometry.spacing)
    band = band_mm if band_mm is not None else max(2.0, 1.5 * largest)
    axis = height_axis if height_axis is not None else _neighbour_axis(image, int(label))
    axis = SUPERIOR if axis is None else np.asarray(axis, dtype=np.float64)
    lr = LEFT
    si = unit(axis - (axis @ lr) * lr)
    if si @ SUPERIOR < 0:
        si = -si
    ap = unit(np.cross(si, lr))  # right-handed (L, P, S)
    frame = np.stack([lr, ap, si], axis=1)
    centre = voxels.mean(0)
    v = (voxels - centre) @ frame
    s = (surface - centre) @ frame
    mid_x = float(np.median(v[:, 0]))
    in_band = np.abs(v[:, 0] - mid_x) < band
    if in_band.sum() < 10:
        raise MetricInputError("vertebra: too few voxels at the mid-sagittal plane")
    body_back, arch_front = _split_midline(v[in_band, 1], 1.01 * largest)

    s_band = s[np.abs(s[:, 0] - mid_x) < band]
    gap = (body_back + arch_front) / 2
    tol = largest  # surface vertices of a voxelised plane scatter by about a voxel: average the extreme ones
    front = _face(s_band[:, 1], tol, low=True)
    back = _face(s_band[s_band[:, 1] < gap, 1], tol, low=False)
    arch = s_band[s_band[:, 1] > gap, 1]
    depth = back - front
    anterior = s_band[s_band[:, 1] < front + 0.1 * depth, 2]
    posterior = s_band[(s_band[:, 1] > back - 0.1 * depth) & (s_band[:, 1] < gap), 2]
    core = s[(s[:, 1] > front + 0.25 * depth) & (s[:, 1] < back - 0.25 * depth), 0]
    return VertebraMorphometry(
        body_centre_mm=voxels[v[:, 1] < back].mean(0),
        body_width_mm=_extent(core, tol),
        body_depth_mm=float(depth),
        body_height_anterior_mm=_extent(anterior, tol),
        body_height_posterior_mm=_extent(posterior, tol),
        canal_depth_mm=_face(arch, tol, low=True) - back,
        spinous_process_length_mm=_extent(arch, tol),
        height_axis=si,
        sagittal_tilt_deg=angle_deg(si, SUPERIOR),
    )
