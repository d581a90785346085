"""Deterministic made-up CT phantoms with organ labels and real-world geometry.

Used by the demo, the tests and the benchmarks: a body ellipse with fat and muscle, organs of
distinct Hounsfield units, noise, anisotropic spacing and LPS-flipped or oblique orientation.
Nothing here resembles a patient; everything is reproducible from ``seed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from medswin.io.image import Image

__all__ = ["PHANTOM_LABELS", "PhantomCase", "crop_to_body", "make_ct_phantom", "oblique_direction"]

#: label value -> (name, mean HU); the demo model card uses the same names.
PHANTOM_LABELS: dict[int, tuple[str, float]] = {
    1: ("liver", 60.0),
    2: ("spleen", 120.0),
    3: ("kidney_right", 180.0),
    4: ("kidney_left", 180.0),
    5: ("vertebra", 600.0),
}

# Ellipsoids in normalised body coordinates (x: patient left+, y: posterior+, z: superior+), each
# (centre, semi-axes) in units of the body's half-extent.
_ORGANS: dict[int, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    1: ((-0.35, -0.05, 0.25), (0.32, 0.30, 0.35)),
    2: ((0.45, 0.15, 0.30), (0.16, 0.18, 0.22)),
    3: ((-0.30, 0.45, -0.25), (0.12, 0.12, 0.25)),
    4: ((0.30, 0.45, -0.20), (0.12, 0.12, 0.25)),
    5: ((0.0, 0.62, 0.0), (0.12, 0.12, 0.95)),
}


@dataclass
class PhantomCase:
    """A made-up CT (HU, float32) and its organ labels (uint8) on the same grid."""

    image: Image
    labels: Image


def oblique_direction(angle_deg: float = 12.0) -> np.ndarray:
    """An LPS direction matrix rotated about two axes: a realistic oblique acquisition."""
    a, b = np.deg2rad(angle_deg), np.deg2rad(angle_deg / 2)
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    rz = np.array([[np.cos(b), -np.sin(b), 0], [np.sin(b), np.cos(b), 0], [0, 0, 1]])
    return rz @ rx


def make_ct_phantom(
    shape: tuple[int, int, int] = (96, 96, 64),
    spacing: tuple[float, float, float] = (3.0, 3.0, 4.0),
    orientation: Literal["LPS", "RAS", "oblique"] = "LPS",
    seed: int = 0,
    noise_hu: float = 20.0,
    jitter: float = 0.06,
) -> PhantomCase:
    """Make a CT phantom: body, fat, five organs, noise; geometry as a scanner would write it.

    Args:
        shape: voxels along the array axes (X, Y, Z).
        spacing: voxel size in mm; anisotropic by default like a thick-slice abdominal CT.
        orientation: ``"LPS"`` (DICOM axial: array axes run to patient left, posterior, superior),
            ``"RAS"`` (array axes flipped to right/anterior, as many NIfTI files), or ``"oblique"``.
        seed: makes the organ positions/sizes jitter and the noise reproducible.
        noise_hu: standard deviation of the Gaussian noise in HU.
        jitter: relative random change of organ centres and sizes between seeds.

    Returns:
        A :class:`PhantomCase` whose ``image`` holds HU (float32) and ``labels`` the values of
        :data:`PHANTOM_LABELS` (0 background).
    """
    rng = np.random.default_rng(seed)
    idx = [np.arange(n, dtype=np.float32) for n in shape]
    # normalised coordinates in [-1, 1] along each array axis, body slightly smaller than the field of view
    grid = np.meshgrid(
        *[(i - (n - 1) / 2) / ((n - 1) / 2) for i, n in zip(idx, shape, strict=True)], indexing="ij"
    )
    x, y, z = (g / 0.9 for g in grid)
    if orientation == "RAS":
        x, y = -x, -y  # array axes point right/anterior: the patient's left lies at low x indices
    body = (x**2 / 1.0 + y**2 / 0.75) <= 1.0
    image = np.full(shape, -1000.0, dtype=np.float32)
    image[body] = -90.0  # fat
    muscle = body & ((x**2 / 0.85 + y**2 / 0.62) <= 1.0)
    image[muscle] = 40.0
    labels = np.zeros(shape, dtype=np.uint8)
    for value, (centre, axes) in _ORGANS.items():
        c = np.asarray(centre) + rng.uniform(-jitter, jitter, 3)
        r = np.asarray(axes) * (1.0 + rng.uniform(-jitter, jitter, 3))
        inside = ((x - c[0]) / r[0]) ** 2 + ((y - c[1]) / r[1]) ** 2 + ((z - c[2]) / r[2]) ** 2 <= 1.0
        inside &= body
        labels[inside] = value
        image[inside] = PHANTOM_LABELS[value][1]
    image += rng.normal(0.0, noise_hu, shape).astype(np.float32)
    image[~body] = -1000.0 + rng.normal(0.0, 5.0, int((~body).sum())).astype(np.float32)

    if orientation == "LPS":
        direction = np.eye(3)
    elif orientation == "RAS":
        direction = np.diag([-1.0, -1.0, 1.0])
    else:
        direction = oblique_direction()
    extent = np.asarray(shape) * np.asarray(spacing)
    origin = tuple(-(direction @ (extent / 2.0)) + np.array([1.5, -20.0, -100.0]))
    meta = {"modality": "CT", "phantom_seed": seed}
    ct = Image(image[None], spacing, origin, direction, "intensity", dict(meta))
    return PhantomCase(ct, ct.with_array(labels[None], kind="label"))


def crop_to_body(case: PhantomCase) -> PhantomCase:
    """The phantom cut to the largest centred box inside the body on every slice: no air around it.

    Many NIfTI exports are cropped like this; with no air left, "is it CT in HU" has to be decided
    from the tissues (fat, soft tissue, bone), which is what this case tests.
    """
    volume = np.asarray(case.image.array[0])
    inside = (volume > -500.0).all(axis=2)  # body on every slice (air is -1000 HU, fat -90)
    cx, cy = (n // 2 for n in inside.shape)
    best = (0, 0, 0)
    for hx in range(1, cx + 1):
        hy = 0
        while hy < cy and inside[cx - hx : cx + hx, cy - hy - 1 : cy + hy + 1].all():
            hy += 1
        if hy and hx * hy > best[0]:
            best = (hx * hy, hx, hy)
    _, hx, hy = best
    if not hx:
        raise ValueError("the phantom has no body at its centre to crop to")
    start = np.array([cx - hx, cy - hy, 0])
    box = (slice(None), slice(cx - hx, cx + hx), slice(cy - hy, cy + hy), slice(None))
    origin = tuple((case.image.lps_affine @ np.r_[start, 1.0])[:3])

    def cut(image: Image) -> Image:
        return Image(
            image.array[box].copy(), image.spacing, origin, image.direction, image.kind, dict(image.meta)
        )

    return PhantomCase(cut(case.image), cut(case.labels))
