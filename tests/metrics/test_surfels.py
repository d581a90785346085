from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from metric_shapes import SPACING, blob, box
from monai.metrics import compute_surface_dice

from medswin.metrics import hausdorff95, robust_hausdorff, surfel_distances

SHAPE = (30, 24, 12)


@pytest.mark.parametrize("seed", range(3))
def test_surfel_areas_and_distances_equal_monai_subvoxel_surface_dice(seed):
    """MONAI's ``use_subvoxels=True`` NSD weights the same surfels by the same areas (both adapted from DeepMind)."""
    rng = np.random.default_rng(seed)
    pred, ref = blob(rng, SHAPE, 0.3), blob(rng, SHAPE, 0.3)
    distances = surfel_distances(pred, ref, SPACING)
    tolerance = 2.0
    inside = distances.pred_areas[distances.pred_to_ref <= tolerance].sum()
    inside += distances.ref_areas[distances.ref_to_pred <= tolerance].sum()
    ours = inside / (distances.pred_areas.sum() + distances.ref_areas.sum())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        monai = compute_surface_dice(
            torch.from_numpy(pred[None, None]).float(),
            torch.from_numpy(ref[None, None]).float(),
            [tolerance],
            include_background=True,
            spacing=SPACING,
            use_subvoxels=True,
        )
    assert ours == pytest.approx(float(monai), abs=1e-6)


def test_robust_hausdorff_uses_the_area_weighted_percentile():
    ref = box(SHAPE, (0, 0, 3), (*SHAPE[:2], 4))  # a one-slice sheet: surfels on its two faces
    pred = box(SHAPE, (0, 0, 6), (*SHAPE[:2], 7))  # 3 slices up: faces 2 and 3 slices (5.0, 7.5 mm) away
    distances = surfel_distances(pred, ref, SPACING)
    assert set(np.round(distances.pred_to_ref, 9)) == {5.0, 7.5}
    assert distances.robust_hausdorff(95) == pytest.approx(7.5)
    assert distances.robust_hausdorff(40) == pytest.approx(5.0)  # half the area is 5.0 mm away


def test_agrees_with_voxel_hd95_within_a_voxel_on_smooth_shapes(rng):
    pred, ref = blob(rng, SHAPE, 0.3, sigma=3.0), blob(rng, SHAPE, 0.3, sigma=3.0)
    assert abs(robust_hausdorff(pred, ref, SPACING) - hausdorff95(pred, ref, SPACING)) <= max(SPACING)


@pytest.mark.parametrize("kind", ["both", "pred", "ref"])
def test_empty_policy(kind):
    full = box(SHAPE, (5, 5, 2), (15, 15, 6))
    empty = np.zeros(SHAPE, bool)
    pred = empty if kind in ("both", "pred") else full
    ref = empty if kind in ("both", "ref") else full
    distances = surfel_distances(pred, ref, SPACING, empty_distance_mm=374.0)
    assert distances.empty == kind
    assert distances.robust_hausdorff(95) == (0.0 if kind == "both" else 374.0)
