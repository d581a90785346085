"""Area-weighted surface distances on surface elements ("surfels"), DeepMind ``surface-distance`` style.

The BraTS 2023/2024 evaluation (``surface_distance.compute_surface_distances`` +
``compute_robust_hausdorff(·, 95)``) measures HD95 this way, so :mod:`medswin.metrics.brats` uses it
to reproduce challenge numbers. Definitions:

- every 2×2(×2) cell of voxels straddling a mask's boundary (its neighbour code is neither all
  inside nor all outside) is a **surfel**, located at the shared voxel corner, with an area in mm²
  (a length in mm in 2D) looked up from its neighbour code for the voxel spacing. The code table
  and encoding kernel are MONAI's ``get_code_to_measure_table`` (MONAI adapted them from DeepMind);
- each surfel's distance (mm) is to the nearest surfel of the other mask (exact, KD-tree);
- the **robust Hausdorff distance** at percent p: in each direction sort the distances, take the
  first whose cumulative area fraction reaches p/100, then the larger of the two directions.

This differs from MONAI's HD95 (:mod:`medswin.metrics.surface`: voxel centres, unweighted, linear
interpolation); on smooth shapes the two agree within about a voxel.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.spatial import cKDTree

from medswin.metrics._checks import EmptyKind, as_mask_pair, empty_kind, image_diagonal_mm
from medswin.metrics.surface import union_box

__all__ = ["SurfelDistances", "surfel_distances", "robust_hausdorff"]


@lru_cache(maxsize=32)
def _code_table(spacing: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(area or length per neighbour code, encoding kernel) for one spacing, from MONAI."""
    from monai.metrics.utils import get_code_to_measure_table

    table, kernel = get_code_to_measure_table(spacing)
    table = np.asarray(table.detach().cpu().numpy() if hasattr(table, "detach") else table, dtype=np.float64)
    kernel = np.asarray(kernel.detach().cpu().numpy() if hasattr(kernel, "detach") else kernel).reshape(
        (2,) * len(spacing)
    )
    return table, kernel.astype(np.int64)


def _surfels(mask: np.ndarray, spacing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Surfel cell positions (mm, ``(N, ndim)``) and areas (``(N,)``) of a boolean mask."""
    table, kernel = _code_table(tuple(float(s) for s in spacing))
    padded = np.pad(mask.astype(np.int64), 1)
    cells = tuple(n + 1 for n in mask.shape)
    code = np.zeros(cells, dtype=np.int64)
    for offset in itertools.product((0, 1), repeat=mask.ndim):
        window = tuple(slice(o, o + n) for o, n in zip(offset, cells))
        code += padded[window] * kernel[offset]
    full = int(kernel.sum())
    border = (code != 0) & (code != full)
    return np.argwhere(border).astype(np.float64) * spacing, table[code[border]]


@dataclass(frozen=True)
class SurfelDistances:
    """Directed surfel distances (mm) and surfel areas (mm²) of a prediction and a reference mask."""

    pred_to_ref: np.ndarray
    pred_areas: np.ndarray
    ref_to_pred: np.ndarray
    ref_areas: np.ndarray
    empty_distance_mm: float

    @property
    def empty(self) -> EmptyKind:
        return empty_kind(self.pred_to_ref.size, self.ref_to_pred.size)

    def robust_hausdorff(self, percent: float = 95.0) -> float:
        """Area-weighted percentile Hausdorff distance (mm); 0 if both empty, ``empty_distance_mm`` if one is."""
        kind = self.empty
        if kind:
            return 0.0 if kind == "both" else float(self.empty_distance_mm)
        return float(
            max(
                _weighted_percentile(self.pred_to_ref, self.pred_areas, percent),
                _weighted_percentile(self.ref_to_pred, self.ref_areas, percent),
            )
        )


def _weighted_percentile(distances: np.ndarray, areas: np.ndarray, percent: float) -> float:
    order = np.lexsort((areas, distances))  # by distance, ties by area, as DeepMind's sorted(zip(...))
    fraction = np.cumsum(areas[order]) / np.sum(areas)
    index = int(np.searchsorted(fraction, percent / 100.0))
    return float(distances[order][min(index, distances.size - 1)])


def surfel_distances(
    pred: np.ndarray,
    ref: np.ndarray,
    spacing: float | Sequence[float] | np.ndarray,
    empty_distance_mm: float | None = None,
) -> SurfelDistances:
    """Surfel distances and areas of a predicted and a reference mask.

    Args:
        pred: predicted mask ``(X, Y[, Z])``; non-zero is foreground.
        ref: reference mask, same shape.
        spacing: voxel size in mm per axis.
        empty_distance_mm: distance reported when exactly one mask is empty (default: diagonal
            of the image extent).
    """
    pred, ref, spacing_mm = as_mask_pair(pred, ref, spacing)
    if empty_distance_mm is None:
        empty_distance_mm = image_diagonal_mm(pred.shape, spacing_mm)
    nothing = np.zeros(0, dtype=np.float64)
    box = union_box(pred, ref, margin=0)
    if box is None:
        return SurfelDistances(nothing, nothing, nothing, nothing, float(empty_distance_mm))
    pred_points, pred_areas = _surfels(pred[box], spacing_mm)
    ref_points, ref_areas = _surfels(ref[box], spacing_mm)
    if pred_points.size and ref_points.size:
        pred_to_ref = cKDTree(ref_points, leafsize=32).query(pred_points, k=1)[0]
        ref_to_pred = cKDTree(pred_points, leafsize=32).query(ref_points, k=1)[0]
    else:
        pred_to_ref = np.full(len(pred_points), np.inf)
        ref_to_pred = np.full(len(ref_points), np.inf)
    return SurfelDistances(pred_to_ref, pred_areas, ref_to_pred, ref_areas, float(empty_distance_mm))


def robust_hausdorff(
    pred: np.ndarray,
    ref: np.ndarray,
    spacing: float | Sequence[float] | np.ndarray,
    percent: float = 95.0,
    empty_distance_mm: float | None = None,
) -> float:
    """DeepMind/BraTS robust Hausdorff distance (mm) at ``percent``, area-weighted over surfels.

    Both masks empty gives 0; one empty gives ``empty_distance_mm`` (BraTS: 374).
    """
    return surfel_distances(pred, ref, spacing, empty_distance_mm).robust_hausdorff(percent)
