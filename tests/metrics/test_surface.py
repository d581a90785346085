from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from metric_shapes import SPACING, blob, box
from monai.metrics import compute_average_surface_distance, compute_hausdorff_distance, compute_surface_dice
from scipy import ndimage

from medswin.errors import MetricInputError
from medswin.metrics import (
    average_symmetric_surface_distance,
    hausdorff95,
    hausdorff_distance,
    image_diagonal_mm,
    mask_edges,
    mean_surface_distance,
    normalized_surface_dice,
    surface_distances,
)

SHAPE = (30, 24, 12)


def monai_surface_metrics(
    pred: np.ndarray, ref: np.ndarray, spacing, tolerance_mm: float
) -> dict[str, float]:
    """MONAI 1.6.1's values for one binary structure (the reference our definitions must equal)."""
    p = torch.from_numpy(pred[None, None].astype(np.float32))
    r = torch.from_numpy(ref[None, None].astype(np.float32))
    common = {"include_background": True, "spacing": spacing}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "hd": float(compute_hausdorff_distance(p, r, **common)),
            "hd95": float(compute_hausdorff_distance(p, r, percentile=95, **common)),
            "assd": float(compute_average_surface_distance(p, r, symmetric=True, **common)),
            "msd": float(compute_average_surface_distance(p, r, symmetric=False, **common)),
            "nsd": float(compute_surface_dice(p, r, [tolerance_mm], **common)),
        }


def test_edges_are_mask_minus_its_face_connected_erosion(rng):
    mask = blob(rng, (20, 18, 9), fraction=0.4)
    mask[0, 3:9, 2:5] = True  # touches the array border: border voxels are edges
    assert np.array_equal(mask_edges(mask), mask ^ ndimage.binary_erosion(mask))
    flat = mask[:, :, 4]
    assert np.array_equal(mask_edges(flat), flat ^ ndimage.binary_erosion(flat))


@pytest.mark.parametrize("seed", range(4))
def test_equals_monai_on_random_shapes_with_anisotropic_spacing(seed):
    rng = np.random.default_rng(seed)
    shape = (36, 30, 14)
    pred = blob(rng, shape, fraction=0.2 + 0.05 * seed)
    ref = blob(rng, shape, fraction=0.25)
    spacing = (0.78, 1.3, 2.5) if seed % 2 else (1.1, 0.7, 3.0)
    expected = monai_surface_metrics(pred, ref, spacing, tolerance_mm=2.0)
    distances = surface_distances(pred, ref, spacing)
    assert distances.hausdorff() == pytest.approx(expected["hd"], abs=1e-3)
    assert distances.hausdorff(95) == pytest.approx(expected["hd95"], abs=1e-3)
    assert distances.average_symmetric() == pytest.approx(expected["assd"], abs=1e-3)
    assert distances.mean_pred_to_ref() == pytest.approx(expected["msd"], abs=1e-3)
    assert distances.surface_dice(2.0) == pytest.approx(expected["nsd"], abs=1e-6)
    # the one-call functions give the same numbers
    assert hausdorff95(pred, ref, spacing) == pytest.approx(expected["hd95"], abs=1e-3)
    assert average_symmetric_surface_distance(pred, ref, spacing) == pytest.approx(expected["assd"], abs=1e-3)
    assert normalized_surface_dice(pred, ref, spacing, 2.0) == pytest.approx(expected["nsd"], abs=1e-6)


def test_equals_monai_in_2d_and_for_shapes_touching_the_border(rng):
    shape = (48, 40)
    pred, ref = blob(rng, shape, 0.3), blob(rng, shape, 0.3)
    pred[0, :] = True
    expected = monai_surface_metrics(pred, ref, (0.6, 1.7), tolerance_mm=1.5)
    distances = surface_distances(pred, ref, (0.6, 1.7))
    assert distances.hausdorff() == pytest.approx(expected["hd"], abs=1e-3)
    assert distances.hausdorff(95) == pytest.approx(expected["hd95"], abs=1e-3)
    assert distances.average_symmetric() == pytest.approx(expected["assd"], abs=1e-3)
    assert distances.surface_dice(1.5) == pytest.approx(expected["nsd"], abs=1e-6)


def test_shifted_box_distances_are_hand_computable():
    ref = box(SHAPE, (5, 5, 2), (15, 15, 6))
    along_x = box(SHAPE, (7, 5, 2), (17, 15, 6))  # 2 voxels × 0.8 mm
    assert hausdorff_distance(along_x, ref, SPACING) == pytest.approx(1.6)
    along_z = box(SHAPE, (5, 5, 3), (15, 15, 7))  # 1 slice × 2.5 mm
    assert hausdorff_distance(along_z, ref, SPACING) == pytest.approx(2.5)
    diagonal = box(SHAPE, (7, 5, 3), (17, 15, 7))  # the far corners differ by (1.6, 0, 2.5) mm
    assert hausdorff_distance(diagonal, ref, SPACING) == pytest.approx(math.hypot(1.6, 2.5))


def test_parallel_sheets_have_one_distance_for_every_metric():
    ref = box(SHAPE, (0, 0, 3), SHAPE[:2] + (4,))  # one slice: every voxel is an edge voxel
    pred = box(SHAPE, (0, 0, 6), SHAPE[:2] + (7,))  # 3 slices × 2.5 mm away
    distances = surface_distances(pred, ref, SPACING)
    for value in (
        distances.hausdorff(),
        distances.hausdorff(95),
        distances.average_symmetric(),
        distances.mean_pred_to_ref(),
        distances.mean_ref_to_pred(),
    ):
        assert value == pytest.approx(7.5)
    assert distances.surface_dice(7.4) == 0.0
    assert distances.surface_dice(7.5) == 1.0
    assert mean_surface_distance(ref, pred, SPACING) == pytest.approx(7.5)


def test_sphere_inside_sphere_distances_scale_with_spacing():
    grid = np.indices((41, 41, 41)).astype(float) - 20
    radius = np.sqrt((grid**2).sum(axis=0))
    ref, pred = radius <= 15, radius <= 12
    hd_iso = hausdorff_distance(pred, ref, 1.0)
    assert abs(hd_iso - 3.0) <= math.sqrt(3)  # radii differ by 3 voxels; voxel corners add up to √3
    assert hausdorff_distance(pred, ref, 2.0) == pytest.approx(2 * hd_iso)


@pytest.mark.parametrize("kind", ["both", "pred", "ref"])
def test_empty_policy(kind):
    full = box(SHAPE, (5, 5, 2), (15, 15, 6))
    empty = np.zeros(SHAPE, bool)
    pred = empty if kind in ("both", "pred") else full
    ref = empty if kind in ("both", "ref") else full
    distances = surface_distances(pred, ref, SPACING)
    assert distances.empty == kind
    diagonal = image_diagonal_mm(SHAPE, SPACING)
    expected_distance = 0.0 if kind == "both" else diagonal
    assert distances.hausdorff() == expected_distance
    assert distances.hausdorff(95) == expected_distance
    assert distances.average_symmetric() == expected_distance
    assert distances.mean_pred_to_ref() == expected_distance
    assert distances.mean_ref_to_pred() == expected_distance
    assert distances.surface_dice(2.0) == (1.0 if kind == "both" else 0.0)
    assert hausdorff95(pred, ref, SPACING, empty_distance_mm=374.0) == (0.0 if kind == "both" else 374.0)


def test_default_empty_distance_is_the_brats_diagonal_for_the_brats_grid():
    assert image_diagonal_mm((240, 240, 155), (1.0, 1.0, 1.0)) == pytest.approx(373.13, abs=0.005)


def test_bad_inputs_are_named():
    with pytest.raises(MetricInputError, match="spacing"):
        hausdorff95(np.ones((4, 4, 4)), np.ones((4, 4, 4)), (1.0, 1.0))
    with pytest.raises(MetricInputError, match="spacing"):
        hausdorff95(np.ones((4, 4, 4)), np.ones((4, 4, 4)), (1.0, 0.0, 1.0))
    with pytest.raises(MetricInputError, match="shape"):
        hausdorff95(np.ones((4, 4, 4)), np.ones((4, 4, 3)), 1.0)
    with pytest.raises(ValueError, match="percentile"):
        hausdorff_distance(np.ones((4, 4, 4)), np.ones((4, 4, 4)), 1.0, percentile=120)
    with pytest.raises(ValueError, match="tolerance"):
        normalized_surface_dice(np.ones((4, 4, 4)), np.ones((4, 4, 4)), 1.0, tolerance_mm=-1)


@pytest.mark.parametrize(("slice_mm", "slices"), [(1.3, 2), (1.3, 5), (0.45, 2), (0.78, 3)])
def test_nsd_counts_a_distance_equal_to_the_tolerance_like_monai(slice_mm, slices):
    """The float64 distance of k slices can land one ulp above k × spacing; MONAI (float32) counts it as within."""
    ref = box(SHAPE, (0, 0, 2), (*SHAPE[:2], 3))
    pred = box(SHAPE, (0, 0, 2 + slices), (*SHAPE[:2], 3 + slices))
    spacing = (1.0, 1.0, slice_mm)
    tolerance = slices * slice_mm
    expected = monai_surface_metrics(pred, ref, spacing, tolerance)["nsd"]
    assert normalized_surface_dice(pred, ref, spacing, tolerance) == expected == 1.0
