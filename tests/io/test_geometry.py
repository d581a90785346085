"""reorient is an exact axis permutation/flip; resampling lands on the requested grid."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medswin.errors import GeometryError
from medswin.io import Image, reorient, resample_to_reference, resample_to_spacing


@pytest.mark.parametrize("code", ["RAS", "LPS", "SAR", "IPL", "PIR"])
def test_reorient_round_trip_is_bit_exact(phantom, code):
    image = phantom.image
    turned = reorient(image, code)
    assert turned.orientation == code
    back = reorient(turned, image.orientation)
    np.testing.assert_array_equal(back.array, image.array)
    assert back.grid_difference(image, atol_mm=1e-9) is None


def test_reorient_keeps_every_voxel_at_its_physical_position(oblique_phantom):
    image = oblique_phantom.labels
    turned = reorient(image, "SAR")
    index = np.array([3, 7, 11, 1.0])
    world = image.lps_affine @ index
    moved = np.linalg.solve(turned.lps_affine, world)[:3]
    np.testing.assert_allclose(moved, np.round(moved), atol=1e-9)
    assert turned.array[(0, *np.round(moved).astype(int))] == image.array[0, 3, 7, 11]
    assert turned.kind == "label" and turned.array.dtype == image.array.dtype


def test_reorient_to_ras_agrees_with_nibabel_canonical(phantom):
    canonical = nib.as_closest_canonical(nib.Nifti1Image(phantom.image.array[0], phantom.image.affine))
    ours = reorient(phantom.image, "RAS")
    np.testing.assert_array_equal(ours.array[0], np.asanyarray(canonical.dataobj))
    np.testing.assert_allclose(ours.affine, canonical.affine, atol=1e-9)


def test_reorient_2d_and_bad_codes():
    image = Image(np.arange(12.0).reshape(1, 3, 4), (0.5, 0.25), (0.0, 0.0), np.eye(2))
    flipped = reorient(image, "RA")
    np.testing.assert_array_equal(flipped.array, image.array[:, ::-1, ::-1])
    assert reorient(flipped, "LP").same_grid(image)
    with pytest.raises(GeometryError, match="'RRS' names an axis twice"):
        reorient(Image(np.zeros((1, 2, 2, 2)), (1, 1, 1), (0, 0, 0), np.eye(3)), "RRS")
    with pytest.raises(GeometryError, match="3-letter code"):
        reorient(Image(np.zeros((1, 2, 2, 2)), (1, 1, 1), (0, 0, 0), np.eye(3)), "RA")


def test_resample_to_spacing_keeps_the_field_of_view(phantom):
    labels = resample_to_spacing(phantom.labels, (2.4, None, 1.25))
    assert labels.shape == (16, 28, 40) and labels.spacing == pytest.approx((2.4, 0.9, 1.25))
    assert labels.origin == pytest.approx(phantom.labels.origin)
    assert labels.array.dtype == np.uint8
    assert set(np.unique(labels.array)) <= set(np.unique(phantom.labels.array))  # nearest: no new labels
    image = resample_to_spacing(phantom.image, 1.5)
    assert image.array.dtype == np.float32 and image.kind == "intensity"
    assert image.shape == (26, 17, 33)


def test_resample_to_reference_is_exact_on_a_permuted_grid(oblique_phantom):
    image = oblique_phantom.image
    turned = reorient(image, "RAS")
    back = resample_to_reference(turned, image)
    assert back.same_grid(image, atol_mm=1e-9)
    np.testing.assert_allclose(back.array, image.array, atol=1e-3)
    labels = resample_to_reference(reorient(oblique_phantom.labels, "IPL"), oblique_phantom.labels)
    np.testing.assert_array_equal(labels.array, oblique_phantom.labels.array)


def test_resample_down_and_back_keeps_most_labels(phantom):
    coarse = resample_to_spacing(phantom.labels, (2.4, 1.8, 5.0))
    back = resample_to_reference(coarse, phantom.labels)
    assert back.same_grid(phantom.labels)
    assert (back.array == phantom.labels.array).mean() > 0.95


def test_resample_outside_the_image_gets_the_background(phantom):
    shifted = Image(
        phantom.image.array[:, :16], phantom.image.spacing, phantom.image.origin, phantom.image.direction
    )
    filled = resample_to_reference(shifted, phantom.image)
    assert filled.array[0, 20:].min() == pytest.approx(float(shifted.array.min()))
    with pytest.raises(GeometryError, match="2D image onto the 3D grid"):
        resample_to_reference(Image(np.zeros((1, 4, 4)), (1, 1), (0, 0), np.eye(2)), phantom.image)


@settings(max_examples=25, deadline=None)
@given(
    code=st.permutations([("L", "R"), ("P", "A"), ("I", "S")]).flatmap(
        lambda pairs: st.tuples(*[st.sampled_from(pair) for pair in pairs])
    ),
    angle=st.floats(-40, 40),
    shape=st.tuples(st.integers(1, 5), st.integers(1, 5), st.integers(1, 5)),
)
def test_reorient_is_exact_for_any_target_and_oblique_angle(code, angle, shape):
    from medswin.data.phantom import oblique_direction

    rng = np.random.default_rng(0)
    image = Image(rng.normal(size=(2, *shape)), (0.7, 1.1, 2.9), (10.0, -5.0, 3.0), oblique_direction(angle))
    target = "".join(code)
    turned = reorient(image, target)
    back = reorient(turned, image.orientation)
    np.testing.assert_array_equal(back.array, image.array)
    assert back.grid_difference(image, atol_mm=1e-9) is None
    corner = np.array([*(np.asarray(shape) - 1), 1.0])  # the far corner voxel stays where it was
    world = image.lps_affine @ corner
    index = np.round(np.linalg.solve(turned.lps_affine, world)[:3]).astype(int)
    np.testing.assert_array_equal(
        turned.array[(slice(None), *index)], image.array[(slice(None), *corner[:3].astype(int))]
    )
