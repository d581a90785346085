"""Proximal femur morphometry in millimetres and degrees: head sphere, shaft and neck axes, neck-shaft angle.

The parameters Swin-X2S evaluates (after Cerveri et al. 2010): neck-shaft angle (NSA), head radius
(FHR), head centre (FHC), offset of the head centre from the shaft axis (FO) and the directions
of the shaft (FDA) and neck (FNA) axes. The official pipeline measures them on meshes in voxel
units of its 128×128×160 grid (about 2.6 mm); here everything is in patient millimetres (LPS),
so numbers from the two differ by the voxel size.

Method (own implementation):

1. Shaft axis: the femur's principal axis, oriented superiorly, then refined as the line through
   the centroids of 5 mm slabs cut across the shaft below the proximal ``proximal_mm`` (any plane
   cut of a cylinder has its centroid on the axis).
2. Head: the surface point farthest from the shaft axis lies on the head (as in the official
   heuristic); a sphere is fitted to the surface around it and refitted on the points within a
   band around the sphere until stable (the neck's surface falls outside the band).
3. Neck axis: the line from the head centre through the centroid of the bone in a thin slab
   across the neck just outside the head sphere (within 0.75 head radii of the axis, so the
   trochanters stay out), iterated until the direction is stable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from medswin.errors import MetricInputError
from medswin.io.image import Image
from medswin.metrics.morphometry._geometry import (
    SUPERIOR,
    MorphometryResult,
    angle_deg,
    fit_line,
    fit_sphere,
    label_geometry,
    unit,
)

__all__ = ["FemurMorphometry", "femur_morphometry"]


@dataclass
class FemurMorphometry(MorphometryResult):
    """Proximal femur parameters (LPS millimetres and degrees).

    Attributes:
        head_centre_mm: centre of the fitted head sphere (FHC).
        head_radius_mm / head_diameter_mm: its radius (FHR) and diameter.
        shaft_axis: unit direction of the diaphysis, pointing proximally (FDA).
        shaft_point_mm: a point on the shaft axis.
        neck_axis: unit direction of the neck, pointing from the shaft towards the head (FNA).
        neck_shaft_angle_deg: angle between neck axis and distal shaft axis (NSA, ~125-135° in adults).
        neck_length_mm: head centre to the neck axis' closest approach to the shaft axis.
        offset_mm: distance of the head centre from the shaft axis line (FO).
        head_fit_rms_mm: RMS distance of the surface points used from the head sphere (fit quality).
    """

    head_centre_mm: np.ndarray = field(metadata={"kind": "point"})
    head_radius_mm: float = field(metadata={"kind": "scalar"})
    head_diameter_mm: float = field(metadata={"kind": "scalar"})
    shaft_axis: np.ndarray = field(metadata={"kind": "axis"})
    shaft_point_mm: np.ndarray = field(metadata={})
    neck_axis: np.ndarray = field(metadata={"kind": "axis"})
    neck_shaft_angle_deg: float = field(metadata={"kind": "scalar"})
    neck_length_mm: float = field(metadata={"kind": "scalar"})
    offset_mm: float = field(metadata={"kind": "scalar"})
    head_fit_rms_mm: float = field(metadata={})


def _distance_to_line(points: np.ndarray, point: np.ndarray, direction: np.ndarray) -> np.ndarray:
    rel = points - point
    return np.linalg.norm(rel - np.outer(rel @ direction, direction), axis=1)


def _shaft_axis(voxels: np.ndarray, proximal_mm: float, slab_mm: float) -> tuple[np.ndarray, np.ndarray]:
    centre, axis = fit_line(voxels)
    if axis @ SUPERIOR < 0:
        axis = -axis
    for _ in range(3):
        t = (voxels - centre) @ axis
        top = t.max() - proximal_mm
        bottom = t.min() + slab_mm / 2  # the distal cut end is often oblique: skip its half slab
        if top - bottom < 3 * slab_mm:
            raise MetricInputError(
                f"femur: only {max(top - bottom, 0):.0f} mm of shaft below the proximal {proximal_mm:.0f} mm; "
                "the shaft axis needs at least 15 mm (is the femur cropped, or is it another bone?)"
            )
        edges = np.arange(bottom, top + 1e-9, slab_mm)
        centroids, counts = [], []
        for lo, hi in zip(edges[:-1], edges[1:], strict=True):
            inside = (t >= lo) & (t < hi)
            if inside.sum() >= 10:
                centroids.append(voxels[inside].mean(0))
                counts.append(inside.sum())
        if len(centroids) < 3:
            raise MetricInputError("femur: too few shaft slabs to fit an axis")
        centre, new_axis = fit_line(np.asarray(centroids), np.asarray(counts, dtype=np.float64))
        axis = new_axis if new_axis @ axis >= 0 else -new_axis
    return centre, axis


def _head_sphere(
    surface: np.ndarray, far_point: np.ndarray, iterations: int = 8
) -> tuple[np.ndarray, float, float]:
    near = surface[np.linalg.norm(surface - far_point, axis=1) < 30.0]
    centre, radius = fit_sphere(near)
    for _ in range(iterations):
        d = np.linalg.norm(surface - centre, axis=1)
        band = np.abs(d - radius) < max(1.0, 0.06 * radius)
        if band.sum() < 20:
            break
        new_centre, new_radius = fit_sphere(surface[band])
        converged = np.linalg.norm(new_centre - centre) < 1e-3 and abs(new_radius - radius) < 1e-3
        centre, radius = new_centre, new_radius
        if converged:
            break
    d = np.linalg.norm(surface - centre, axis=1)
    band = np.abs(d - radius) < max(1.0, 0.06 * radius)
    rms = float(np.sqrt(np.mean((d[band] - radius) ** 2))) if band.any() else float("nan")
    return centre, radius, rms


def _neck_axis(voxels: np.ndarray, head: np.ndarray, radius: float, towards_shaft: np.ndarray) -> np.ndarray:
    direction = towards_shaft
    for _ in range(20):
        rel = voxels - head
        s = rel @ direction
        radial = np.linalg.norm(rel - np.outer(s, direction), axis=1)
        slab = (s > 1.02 * radius) & (s < 1.15 * radius) & (radial < 0.75 * radius)
        if slab.sum() < 10:
            raise MetricInputError("femur: no bone found across the neck next to the head sphere")
        new = unit(voxels[slab].mean(0) - head)
        if np.linalg.norm(new - direction) < 1e-5:
            return new
        direction = new
    return direction


def femur_morphometry(
    image: Image, label: int | tuple[int, ...] = 1, proximal_mm: float = 80.0, slab_mm: float = 5.0
) -> FemurMorphometry:
    """Head, shaft and neck parameters of one femur in a label image.

    Args:
        image: 3D label image (any orientation and spacing).
        label: the femur's label value (TotalSeg-all: 53 left, 54 right).
        proximal_mm: length measured from the femur's top that holds head, neck and trochanters
            and is left out of the shaft fit.
        slab_mm: slab thickness for the shaft centroids.

    Raises:
        MetricInputError: the label is missing, or too little shaft is visible.
    """
    geometry = label_geometry(image, label, "femur morphometry")
    voxels, surface = geometry.voxels, geometry.surface
    shaft_point, shaft_axis = _shaft_axis(voxels, proximal_mm, slab_mm)

    t_top = ((voxels - shaft_point) @ shaft_axis).max()
    proximal = surface[(surface - shaft_point) @ shaft_axis > t_top - proximal_mm]
    far_point = proximal[np.argmax(_distance_to_line(proximal, shaft_point, shaft_axis))]
    head, radius, rms = _head_sphere(surface, far_point)

    rel = head - shaft_point
    foot = shaft_point + (rel @ shaft_axis) * shaft_axis  # head centre projected on the shaft axis
    neck_to_shaft = _neck_axis(voxels, head, radius, unit(foot - head))
    neck_axis = -neck_to_shaft  # from the shaft towards the head

    # closest approach of the neck line (head + s * neck_to_shaft) to the shaft line
    w = head - shaft_point
    b = float(neck_to_shaft @ shaft_axis)
    denominator = 1.0 - b * b
    s = (b * float(w @ shaft_axis) - float(w @ neck_to_shaft)) / denominator if denominator > 1e-9 else 0.0
    return FemurMorphometry(
        head_centre_mm=head,
        head_radius_mm=radius,
        head_diameter_mm=2 * radius,
        shaft_axis=shaft_axis,
        shaft_point_mm=shaft_point,
        neck_axis=neck_axis,
        neck_shaft_angle_deg=angle_deg(neck_axis, -shaft_axis),
        neck_length_mm=abs(s),
        offset_mm=float(np.linalg.norm(head - foot)),
        head_fit_rms_mm=rms,
    )
