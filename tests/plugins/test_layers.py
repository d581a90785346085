"""Image <-> napari layer data: exact round trips and voxels drawn where the patient is (LPS mm)."""

from __future__ import annotations

import numpy as np
import pytest
from napari.layers import Image as ImageLayer
from napari.layers import Labels as LabelsLayer
from napari_medswin._layers import (
    CT_SOFT_TISSUE_WINDOW,
    METADATA_KEY,
    display_window,
    image_to_layer_data,
    label_colormap,
    layer_to_image,
    spatial_transform,
)

from medswin.data.phantom import make_ct_phantom
from medswin.io.image import Image
from medswin.models import preset_card

pytestmark = pytest.mark.napari


def _indexed(image: Image) -> Image:
    """The same grid with each voxel holding its own flat index, to track voxels through reorientation."""
    return image.with_array(np.arange(np.prod(image.shape), dtype=np.int64).reshape(image.shape)[None])


def test_round_trip_is_exact_for_images_and_labels(small_case):
    for image in (small_case.image, small_case.labels):
        data, kwargs, layer_type = image_to_layer_data(image)
        assert layer_type == ("labels" if image.kind == "label" else "image")
        back = layer_to_image(data, kwargs)
        assert back.grid_difference(image, atol_mm=1e-9) is None
        assert back.kind == image.kind
        np.testing.assert_array_equal(back.array, image.array)
        assert back.meta == image.meta


def test_every_voxel_is_drawn_at_its_lps_position(small_case):
    """napari's data_to_world of each displayed voxel equals the file's LPS position, in (z, y, x) order."""
    image = _indexed(small_case.image)
    data, kwargs, _ = image_to_layer_data(image)
    layer = ImageLayer(data, **{k: v for k, v in kwargs.items() if k != "contrast_limits"})
    rng = np.random.default_rng(0)
    display_index = np.stack([rng.integers(0, n, 50) for n in data.shape], axis=1)
    flat = data[tuple(display_index.T)]
    source_index = np.stack(np.unravel_index(flat, image.shape), axis=1)
    lps = (image.lps_affine @ np.c_[source_index, np.ones(len(flat))].T).T[:, :3]
    world = np.array([layer.data_to_world(i) for i in display_index])
    np.testing.assert_allclose(world, lps[:, ::-1], atol=1e-9)


@pytest.mark.parametrize("orientation", ["LPS", "RAS"])
def test_display_is_radiological_with_scale_and_translate_only(orientation):
    """Axial slices: patient right (liver) on the screen's left, spine (vertebra) at the bottom."""
    case = make_ct_phantom(shape=(40, 36, 16), spacing=(1.0, 1.2, 3.0), orientation=orientation, seed=1)
    data, kwargs, _ = image_to_layer_data(case.labels)
    assert "rotate" not in kwargs
    assert kwargs["scale"] == [3.0, 1.2, 1.0]  # (S, P, L) axes: slice step, row, column spacing
    slice_ = data[data.shape[0] // 2 + 2]
    liver_column = np.argwhere(slice_ == 1)[:, 1].mean()
    spleen_column = np.argwhere(slice_ == 2)[:, 1].mean()
    assert liver_column < spleen_column
    vertebra_row = np.argwhere(slice_ == 5)[:, 0].mean()
    liver_row = np.argwhere(slice_ == 1)[:, 0].mean()
    assert vertebra_row > liver_row
    # the slider runs inferior -> superior from the lowest slice (the phantom's third axis points superior)
    assert kwargs["translate"][0] == pytest.approx(case.image.origin[2])


def test_oblique_grid_keeps_its_rotation(oblique_phantom):
    _, kwargs, _ = image_to_layer_data(oblique_phantom.image)
    rotate = np.asarray(kwargs["rotate"])
    np.testing.assert_allclose(rotate @ rotate.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(rotate) == pytest.approx(1.0)
    assert not np.allclose(rotate, np.eye(3))


def test_labels_share_the_image_transform(small_case):
    _, image_kwargs, _ = image_to_layer_data(small_case.image)
    _, label_kwargs, _ = image_to_layer_data(small_case.labels)
    for key in ("scale", "translate", "rotate"):
        np.testing.assert_array_equal(
            np.asarray(image_kwargs.get(key, 0)), np.asarray(label_kwargs.get(key, 0))
        )


def test_multichannel_image_is_one_4d_layer_and_comes_back():
    case = make_ct_phantom(shape=(16, 14, 8), spacing=(1.0, 1.0, 2.0), orientation="RAS", seed=4)
    stacked = case.image.with_array(np.stack([case.image.array[0], -case.image.array[0]]))
    data, kwargs, _ = image_to_layer_data(stacked)
    assert data.shape == (2, 8, 14, 16)
    assert kwargs["scale"][0] == 1.0 and kwargs["translate"][0] == 0.0
    back = layer_to_image(data, kwargs)
    assert back.grid_difference(stacked) is None
    np.testing.assert_array_equal(back.array, stacked.array)


def test_2d_image_shows_rows_as_posterior_and_columns_as_left():
    array = np.arange(12, dtype=np.float32).reshape(4, 3)  # (X, Y)
    image = Image(array[None], (0.5, 0.25), (10.0, 20.0), np.eye(2))
    data, kwargs, _ = image_to_layer_data(image)
    np.testing.assert_array_equal(data, array.T)  # rows = Y (posterior), columns = X (left)
    assert kwargs["scale"] == [0.25, 0.5] and kwargs["translate"] == [20.0, 10.0]
    back = layer_to_image(data, kwargs)
    assert back.grid_difference(image) is None
    np.testing.assert_array_equal(back.array, image.array)


def test_layers_not_made_by_medswin_are_read_as_lps_millimetres():
    data = np.zeros((5, 6, 7), dtype=np.float32)
    attributes = {"scale": (3.0, 2.0, 1.0), "translate": (30.0, 20.0, 10.0), "metadata": {}}
    image = layer_to_image(data, attributes)
    assert image.spacing == (3.0, 2.0, 1.0)  # array axes (z, y, x) kept as they are
    np.testing.assert_allclose(image.origin, (10.0, 20.0, 30.0))
    np.testing.assert_allclose(image.direction, np.eye(3)[::-1])


def test_ct_gets_the_soft_tissue_window_and_mr_percentiles():
    ct = make_ct_phantom(shape=(16, 16, 8), seed=0).image
    assert display_window(ct) == CT_SOFT_TISSUE_WINDOW
    unnamed = ct.with_array(ct.array)
    unnamed.meta.pop("modality")  # a NIfTI CT says nothing: Hounsfield units are recognised
    assert display_window(unnamed) == CT_SOFT_TISSUE_WINDOW
    values = np.random.default_rng(0).gamma(2.0, 100.0, (1, 20, 20, 10)).astype(np.float32)
    mr = Image(values, (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), np.eye(3), meta={"modality": "MR"})
    low, high = display_window(mr)
    assert low == pytest.approx(np.percentile(values, 0.5)) and high == pytest.approx(
        np.percentile(values, 99.5)
    )
    constant = mr.with_array(np.full_like(values, 7.0))
    assert display_window(constant) == (7.0, 8.0)


def test_label_colours_and_names_come_from_the_card():
    card = preset_card("swin_unetr_btcv")
    colormap = label_colormap(card.labels, card.colors)
    np.testing.assert_allclose(colormap.color_dict[6][:3], np.asarray(card.colors[6]) / 255.0)
    assert colormap.color_dict[0][3] == 0.0  # background transparent
    case = make_ct_phantom(shape=(16, 16, 8), seed=0)
    data, kwargs, _ = image_to_layer_data(case.labels, "organs", label_names={1: "liver", 2: "spleen"})
    layer = LabelsLayer(data, **kwargs)
    assert dict(zip(layer.features["index"], layer.features["name"], strict=True))[1] == "liver"
    assert kwargs["metadata"][METADATA_KEY]["label_names"] == {1: "liver", 2: "spleen"}


def test_labels_on_a_multichannel_image_take_its_spatial_transform(oblique_phantom):
    image = oblique_phantom.image.with_array(np.concatenate([oblique_phantom.image.array] * 2))
    data, kwargs, _ = image_to_layer_data(image)
    four_d = ImageLayer(data, **{k: v for k, v in kwargs.items() if k != "contrast_limits"})
    transform = spatial_transform(four_d, 3)
    labels_data, labels_kwargs, _ = image_to_layer_data(oblique_phantom.labels)
    three_d = LabelsLayer(labels_data, **labels_kwargs)
    np.testing.assert_allclose(transform["scale"], three_d.scale)
    np.testing.assert_allclose(transform["translate"], three_d.translate)
    np.testing.assert_allclose(transform["rotate"], three_d.rotate, atol=1e-15)
    copied = LabelsLayer(labels_data, **transform)
    np.testing.assert_allclose(
        copied._data_to_world.affine_matrix, three_d._data_to_world.affine_matrix, atol=1e-12
    )
    np.testing.assert_allclose(
        four_d._data_to_world.affine_matrix[1:, 1:], copied._data_to_world.affine_matrix, atol=1e-12
    )
