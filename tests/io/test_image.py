from __future__ import annotations

import numpy as np
import pytest

from medswin.errors import GeometryError
from medswin.io.image import Image


def test_affine_round_trip_is_exact(phantom):
    image = phantom.image
    rebuilt = Image.from_affine(image.array, image.affine)
    assert np.allclose(rebuilt.spacing, image.spacing, atol=1e-12)
    assert np.allclose(rebuilt.origin, image.origin, atol=1e-12)
    assert np.allclose(rebuilt.direction, image.direction, atol=1e-12)


def test_metatensor_round_trip_keeps_geometry_and_voxels(phantom):
    image = phantom.image
    tensor = image.to_metatensor()
    assert tuple(tensor.shape) == (1, *image.shape)
    np.testing.assert_allclose(tensor.affine.numpy(), image.affine, atol=1e-12)
    back = Image.from_metatensor(tensor)
    assert back.same_grid(image, atol_mm=1e-9)
    np.testing.assert_array_equal(back.array, image.array)


def test_sitk_round_trip_matches_physical_points(oblique_phantom):
    image = oblique_phantom.image
    sitk_image = image.to_sitk()
    index = (3, 7, 11)
    expected = image.lps_affine @ np.array([*index, 1.0])
    np.testing.assert_allclose(sitk_image.TransformIndexToPhysicalPoint(index), expected[:3], atol=1e-9)
    assert sitk_image[index] == pytest.approx(float(image.array[(0, *index)]))
    back = Image.from_sitk(sitk_image)
    assert back.same_grid(image, atol_mm=1e-9)
    np.testing.assert_array_equal(back.array, image.array)


def test_multichannel_sitk_round_trip():
    array = np.arange(2 * 4 * 5 * 6, dtype=np.float32).reshape(2, 4, 5, 6)
    image = Image(array, (1.0, 2.0, 3.0), (0.0, 0.0, 0.0), np.eye(3))
    back = Image.from_sitk(image.to_sitk())
    np.testing.assert_array_equal(back.array, array)


def test_ras_affine_follows_nibabel_convention(phantom):
    # LPS-identity direction means the array axes point left, posterior, superior.
    if phantom.image.orientation == "LPS":
        assert phantom.image.affine[0, 0] < 0 and phantom.image.affine[1, 1] < 0


@pytest.mark.parametrize(
    ("spacing", "message"),
    [((0.0, 1.0, 1.0), "spacing"), ((1.0, -2.0, 1.0), "spacing"), ((1.0, float("nan"), 1.0), "spacing")],
)
def test_invalid_spacing_is_refused(spacing, message):
    with pytest.raises(GeometryError, match=message):
        Image(np.zeros((1, 2, 2, 2)), spacing, (0, 0, 0), np.eye(3))


def test_sheared_affine_is_refused():
    affine = np.eye(4)
    affine[0, 1] = 0.5
    with pytest.raises(GeometryError, match="sheared"):
        Image.from_affine(np.zeros((1, 2, 2, 2)), affine)


def test_repr_tells_what_you_hold(phantom):
    text = repr(phantom.labels)
    assert "label" in text and "spacing: (1.2, 0.9, 2.5) mm" in text
