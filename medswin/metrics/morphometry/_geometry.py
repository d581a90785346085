"""Shared geometry for morphometry: a label's voxels and surface in patient millimetres, fits, angles.

Everything is in the patient's LPS frame (mm), computed through the image's full affine, so
anisotropic spacing and oblique directions need no special care downstream.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from medswin.errors import MetricInputError
from medswin.io.image import Image

__all__ = [
    "LabelGeometry",
    "label_geometry",
    "fit_sphere",
    "fit_line",
    "angle_deg",
    "axis_angle_deg",
    "unit",
    "MorphometryResult",
]

#: patient directions in LPS
LEFT = np.array([1.0, 0.0, 0.0])
POSTERIOR = np.array([0.0, 1.0, 0.0])
SUPERIOR = np.array([0.0, 0.0, 1.0])


def unit(vector: np.ndarray) -> np.ndarray:
    """``vector`` scaled to length 1 (raises on a zero vector)."""
    norm = float(np.linalg.norm(vector))
    if norm == 0.0 or not np.isfinite(norm):
        raise MetricInputError("cannot normalise a zero-length direction (degenerate shape)")
    return np.asarray(vector, dtype=np.float64) / norm


def angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle between two directions, 0..180 degrees.

    ``arctan2(|a x b|, a . b)`` rather than ``arccos`` of the dot product: arccos has an infinite
    slope at 1, so one rounding step of the dot product (which differs between AVX2 and AVX-512
    builds) reads as 8.5e-7 degrees between identical axes; the cross product of equal vectors is
    exactly zero, and near 0 and 180 degrees the error stays at the rounding of the inputs.
    """
    a, b = unit(a), unit(b)
    return float(np.degrees(np.arctan2(np.linalg.norm(np.cross(a, b)), np.dot(a, b))))


def axis_angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle between two undirected axes, 0..90 degrees."""
    angle = angle_deg(a, b)
    return min(angle, 180.0 - angle)


@dataclass
class LabelGeometry:
    """One label's voxels and surface in LPS millimetres.

    Attributes:
        voxels: ``(N, 3)`` voxel centres inside the label.
        surface: ``(M, 3)`` vertices of the 0.5 iso-surface of the binary mask (marching cubes on
            the voxel grid): unbiased boundary positions, half a voxel outside the boundary voxels.
        spacing: the image's voxel size (mm).
        voxel_volume_mm3: volume of one voxel.
    """

    voxels: np.ndarray
    surface: np.ndarray
    spacing: tuple[float, ...]
    voxel_volume_mm3: float

    @property
    def volume_mm3(self) -> float:
        return len(self.voxels) * self.voxel_volume_mm3


def _mask(image: Image, labels: int | tuple[int, ...], what: str) -> np.ndarray:
    where = image.meta.get("path", "<label image>")
    if image.spatial_dims != 3 or image.num_channels != 1:
        raise MetricInputError(
            f"{where}: {what} needs a one-channel 3D label image, got shape {image.array.shape}"
        )
    values = (labels,) if isinstance(labels, int | np.integer) else tuple(labels)
    mask = np.isin(image.array[0], values)
    if not mask.any():
        raise MetricInputError(f"{where}: {what}: label(s) {values} not present")
    return mask


def label_geometry(
    image: Image, labels: int | tuple[int, ...], what: str = "morphometry", largest: bool = True
) -> LabelGeometry:
    """Voxels and surface (LPS mm) of ``labels`` in ``image``; ``largest`` keeps the largest 26-connected part."""
    from scipy import ndimage
    from skimage.measure import marching_cubes

    mask = _mask(image, labels, what)
    if largest:
        components, count = ndimage.label(mask, structure=np.ones((3, 3, 3)))
        if count > 1:
            sizes = np.bincount(components.ravel())
            sizes[0] = 0
            mask = components == int(np.argmax(sizes))
    box = ndimage.find_objects(mask.astype(np.uint8))[0]
    start = np.array([s.start for s in box]) - 1
    cropped = np.pad(mask[box], 1).astype(np.float32)
    verts, _, _, _ = marching_cubes(cropped, 0.5)
    affine = image.lps_affine

    def to_world(idx: np.ndarray) -> np.ndarray:
        return np.einsum("ni,ji->nj", idx, affine[:3, :3]) + affine[:3, 3]  # (N,3)@(3,3) is slow in numpy

    voxels = to_world(np.argwhere(mask).astype(np.float64))
    surface = to_world(verts.astype(np.float64) + start)
    return LabelGeometry(voxels, surface, image.spacing, float(np.prod(image.spacing)))


def fit_line(points: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares line through ``points``: ``(centroid, unit direction)`` (direction sign arbitrary)."""
    points = np.asarray(points, dtype=np.float64)
    if len(points) < 2:
        raise MetricInputError("a line fit needs at least two points")
    w = np.ones(len(points)) if weights is None else np.asarray(weights, dtype=np.float64)
    centre = (points * w[:, None]).sum(0) / w.sum()
    centred = (points - centre) * np.sqrt(w)[:, None]
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centre, vt[0]


def fit_sphere(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares sphere through ``points``: algebraic fit refined by geometric least squares.

    Returns ``(centre (3,), radius)`` in the points' units.
    """
    from scipy.optimize import least_squares

    points = np.asarray(points, dtype=np.float64)
    if len(points) < 4:
        raise MetricInputError("a sphere fit needs at least four surface points")
    offset = points.mean(0)
    p = points - offset
    a = np.column_stack([2 * p, np.ones(len(p))])
    b = (p**2).sum(1)
    solution, *_ = np.linalg.lstsq(a, b, rcond=None)
    centre = solution[:3]
    radius = float(np.sqrt(max(solution[3] + centre @ centre, 1e-12)))

    def residual(params: np.ndarray) -> np.ndarray:
        return np.linalg.norm(p - params[:3], axis=1) - params[3]

    refined = least_squares(residual, np.append(centre, radius), method="lm")
    return refined.x[:3] + offset, float(abs(refined.x[3]))


class MorphometryResult:
    """Mixin: per-field differences between two results of the same kind (prediction vs reference).

    Field metadata ``kind`` says how: ``"scalar"`` (absolute difference, mm or degrees),
    ``"point"`` (Euclidean distance, mm) or ``"axis"`` (angle between the axes, folded to 0..90°).
    """

    def errors(self, reference: Any) -> dict[str, float]:
        """``{field: error}`` of ``self`` (e.g. a prediction) against ``reference``."""
        if type(reference) is not type(self):
            raise MetricInputError(f"cannot compare {type(self).__name__} with {type(reference).__name__}")
        out: dict[str, float] = {}
        for f in fields(self):  # type: ignore[arg-type]
            kind = f.metadata.get("kind")
            a, b = getattr(self, f.name), getattr(reference, f.name)
            if kind == "scalar":
                out[f.name] = abs(float(a) - float(b))
            elif kind == "point":
                out[f.name] = float(np.linalg.norm(np.asarray(a) - np.asarray(b)))
            elif kind == "axis":
                out[f.name] = axis_angle_deg(np.asarray(a), np.asarray(b))
        return out
