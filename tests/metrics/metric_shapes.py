"""Small synthetic masks with anisotropic spacing, shared by the metric tests (imported, not a conftest)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

#: anisotropic voxel size (mm) used throughout: in-plane 0.8 × 1.3, slices 2.5.
SPACING = (0.8, 1.3, 2.5)


def blob(
    rng: np.random.Generator, shape: tuple[int, ...], fraction: float = 0.25, sigma: float = 2.5
) -> np.ndarray:
    """A random smooth shape (several lobes, holes possible) covering about ``fraction`` of the array."""
    field = ndimage.gaussian_filter(rng.random(shape), sigma)
    return field > np.quantile(field, 1.0 - fraction)


def box(shape: tuple[int, ...], lo: tuple[int, ...], hi: tuple[int, ...]) -> np.ndarray:
    """Boolean array with the half-open box ``[lo, hi)`` set."""
    mask = np.zeros(shape, dtype=bool)
    mask[tuple(slice(a, b) for a, b in zip(lo, hi))] = True
    return mask
