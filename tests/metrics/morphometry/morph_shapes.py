"""Made-up bone shapes with known geometry, voxelised on anisotropic (optionally oblique) grids."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from medswin.data.phantom import oblique_direction
from medswin.io.image import Image

Inside = Callable[[np.ndarray], np.ndarray]  # (N, 3) LPS points (mm) -> (N,) bool


def unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def bounded(inside: Inside, centre, radius: float) -> Inside:
    """Mark ``inside`` as empty farther than ``radius`` from ``centre`` (lets :func:`voxelise` skip points)."""
    inside.bound = (np.asarray(centre, dtype=np.float64), float(radius))  # type: ignore[attr-defined]
    return inside


def sphere(centre, radius: float) -> Inside:
    c = np.asarray(centre, dtype=np.float64)
    return bounded(lambda p: ((p - c) ** 2).sum(1) <= radius**2, c, radius)


def cylinder(start, end, radius: float) -> Inside:
    """Solid cylinder with flat ends between ``start`` and ``end``."""
    a, b = np.asarray(start, dtype=np.float64), np.asarray(end, dtype=np.float64)
    axis = b - a
    length = np.linalg.norm(axis)
    axis = axis / length

    def inside(p: np.ndarray) -> np.ndarray:
        t = (p - a) @ axis
        radial = np.linalg.norm(p - a - np.outer(t, axis), axis=1)
        return (t >= 0) & (t <= length) & (radial <= radius)

    return bounded(inside, (a + b) / 2, np.hypot(length / 2, radius))


def box(centre, size, rotation: np.ndarray | None = None) -> Inside:
    """Box of ``size`` (mm) centred at ``centre``; ``rotation`` maps box axes to LPS."""
    c, half = np.asarray(centre, dtype=np.float64), np.asarray(size, dtype=np.float64) / 2
    r = np.eye(3) if rotation is None else rotation
    return bounded(
        lambda p: np.all(np.abs(np.einsum("ni,ij->nj", p - c, r)) <= half, axis=1),
        c,
        float(np.linalg.norm(half)),
    )


def rotation_x(degrees: float) -> np.ndarray:
    a = np.radians(degrees)
    return np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])


def voxelise(
    parts: dict[int, list[Inside]],
    low,
    high,
    spacing=(1.0, 0.9, 1.4),
    oblique: bool = False,
) -> Image:
    """Label image covering the LPS box ``low``..``high`` (mm); label ``k`` where any of ``parts[k]`` holds.

    Shapes with a ``bound`` are evaluated only on the voxels of their bounding box.
    """
    direction = oblique_direction(10.0) if oblique else np.eye(3)
    spacing = np.asarray(spacing, dtype=np.float64)
    low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    corners = np.array(
        [[x, y, z] for x in (low[0], high[0]) for y in (low[1], high[1]) for z in (low[2], high[2])]
    )
    local = corners @ direction  # coordinates along the grid axes
    start, stop = local.min(0), local.max(0)
    shape = tuple(int(n) for n in np.ceil((stop - start) / spacing).astype(int) + 1)
    origin = direction @ start
    labels = np.zeros(shape, dtype=np.uint8)

    def points_of(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        idx = np.stack(np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi)], indexing="ij"), -1).reshape(
            -1, 3
        )
        return np.einsum("ni,ji->nj", idx * spacing, direction) + origin

    for value, shapes in parts.items():
        inside = np.zeros(shape, dtype=bool)
        for shape_fn in shapes:
            bound = getattr(shape_fn, "bound", None)
            if bound is None:
                lo, hi = np.zeros(3, dtype=int), np.asarray(shape)
            else:
                centre = (bound[0] - origin) @ direction / spacing
                reach = bound[1] / spacing
                lo = np.clip(np.floor(centre - reach).astype(int), 0, shape)
                hi = np.clip(np.ceil(centre + reach).astype(int) + 1, 0, shape)
                if np.any(hi <= lo):
                    continue
            block = shape_fn(points_of(lo, hi)).reshape(tuple(hi - lo))
            inside[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] |= block
        labels[inside] = value
    return Image(labels[None], tuple(spacing), origin, direction, "label")
