"""Card preprocessing as MONAI transforms, and labels sampled back onto the input's exact grid."""

from __future__ import annotations

import numpy as np
import pytest
from monai.transforms import NormalizeIntensity, Orientation, ScaleIntensityRange, Spacing

from medswin.data.phantom import PhantomCase
from medswin.errors import GeometryError, ModelCardError
from medswin.io.image import Image, lps_to_ras
from medswin.models import preset_card
from medswin.transforms import build_preprocess, preprocess, to_input_grid


def _types(compose) -> list[type]:
    return [type(t) for t in compose.transforms]


def test_btcv_card_builds_orientation_spacing_window() -> None:
    steps = build_preprocess(preset_card("swin_unetr_btcv")).transforms
    assert [type(t) for t in steps[:3]] == [Orientation, Spacing, ScaleIntensityRange]
    assert steps[0].axcodes == "RAS"
    np.testing.assert_allclose(steps[1].pixdim, (1.5, 1.5, 2.0))
    window = steps[2]
    assert (window.a_min, window.a_max, window.b_min, window.b_max, window.clip) == (-175, 250, 0, 1, True)


def test_brats_card_only_normalises_per_channel() -> None:
    steps = build_preprocess(preset_card("swin_unetr_brats21")).transforms
    assert isinstance(steps[0], NormalizeIntensity) and len(steps) == 2
    assert steps[0].nonzero and steps[0].channel_wise


def test_two_d_card_on_volumes_keeps_the_slice_thickness() -> None:
    card = preset_card("swin_unet_synapse").replace(spacing=(0.8, 0.8))
    steps = build_preprocess(card, spatial_dims=3).transforms
    spacing = next(t for t in steps if isinstance(t, Spacing))
    np.testing.assert_allclose(spacing.pixdim, (0.8, 0.8, 0.0))  # 0: keep the input's


@pytest.mark.parametrize("orientation", ["LPS", "RAS", "oblique"])
def test_model_grid_follows_the_card(phantom: PhantomCase, orientation: str) -> None:
    del orientation  # the fixture is parametrised; this names the cases
    card = preset_card("swin_unetr_btcv")
    tensor = preprocess(phantom.image, card)
    grid = Image.from_metatensor(tensor)
    assert grid.orientation == "RAS"
    np.testing.assert_allclose(grid.spacing, (1.5, 1.5, 2.0), atol=1e-6)
    assert tensor.dtype.is_floating_point and str(tensor.dtype) == "torch.float32"
    assert float(tensor.min()) >= 0.0 and float(tensor.max()) <= 1.0
    # same field of view: the model grid's centre is the input grid's centre (within a model voxel)
    centre = lambda image: image.lps_affine[:3] @ np.append((np.asarray(image.shape) - 1) / 2, 1.0)  # noqa: E731
    assert np.linalg.norm(centre(grid) - centre(phantom.image)) < 2.0


def test_zscore_nonzero_per_channel(oblique_phantom: PhantomCase) -> None:
    card = preset_card("swin_unetr_brats21").replace(channels=["a", "b"])
    ct = oblique_phantom.image.array[0]
    two = oblique_phantom.image.with_array(
        np.stack([np.where(ct > 0, ct, 0), np.where(ct > 0, 5 * ct + 3, 0)])
    )
    out = preprocess(two, card).numpy()
    for channel in out:
        values = channel[two.array[0] != 0]
        assert abs(values.mean()) < 1e-4 and abs(values.std() - 1) < 1e-3
    assert np.all(out[:, two.array[0] == 0] == 0)


def test_range01_scales_over_all_channels() -> None:
    card = preset_card("attention_swin_unet_isic")
    rgb = Image(
        np.random.default_rng(0).uniform(10, 200, (3, 20, 16)).astype(np.float32),
        (0.1, 0.1),
        (0, 0),
        np.eye(2),
    )
    out = preprocess(rgb, card).numpy()
    assert out.min() == pytest.approx(0.0) and out.max() == pytest.approx(255.0)


def _sphere(image: Image, centre_lps: np.ndarray, radius_mm: float) -> np.ndarray:
    """Voxels of ``image``'s grid whose centre lies within ``radius_mm`` of ``centre_lps``."""
    index = np.stack(np.meshgrid(*[np.arange(n) for n in image.shape], indexing="ij"), axis=-1)
    world = index @ (image.direction * np.asarray(image.spacing)).T + np.asarray(image.origin)
    return (np.linalg.norm(world - centre_lps, axis=-1) <= radius_mm).astype(np.uint8)


def test_label_painted_in_physical_space_comes_back_on_the_same_voxels(phantom: PhantomCase) -> None:
    """A sphere painted on the (RAS, 1.5x1.5x2 mm) model grid lands on the input's sphere voxels."""
    image = phantom.image
    tensor = preprocess(image, preset_card("swin_unetr_btcv"))
    model_affine = tensor.affine.numpy()
    model_grid = Image.from_affine(np.zeros((1, *tensor.shape[1:])), model_affine)
    centre = image.lps_affine[:3] @ np.append(np.asarray(image.shape) * [0.4, 0.55, 0.5], 1.0)
    on_model = _sphere(model_grid, centre, 7.0)
    back = to_input_grid(on_model, model_affine, image)
    assert back.same_grid(image, atol_mm=0) and back.kind == "label" and back.array.dtype == np.uint8
    expected = _sphere(image, centre, 7.0)
    predicted = back.array[0].astype(bool)
    dice = 2 * (predicted & expected.astype(bool)).sum() / (predicted.sum() + expected.sum())
    assert dice > 0.85
    # every disagreement lies on the sphere's surface (within one model voxel diagonal of 7 mm)
    index = np.argwhere(predicted != expected.astype(bool))
    world = index @ (image.direction * np.asarray(image.spacing)).T + np.asarray(image.origin)
    distance = np.abs(np.linalg.norm(world - centre, axis=-1) - 7.0)
    assert distance.max() < np.linalg.norm((1.5, 1.5, 2.0)) / 2 + 1e-6


def test_reorientation_only_round_trip_is_exact(phantom: PhantomCase) -> None:
    """Without resampling the model grid is the input grid permuted and flipped: nothing moves."""
    card = preset_card("swin_unetr_btcv").replace(spacing=None)
    labels = phantom.labels.with_array(
        phantom.labels.array, kind="intensity"
    )  # carried through like an image
    tensor = build_preprocess(card.replace(intensity={"type": "none"}))(labels.to_metatensor())
    back = to_input_grid(tensor.numpy().round().astype(np.uint8), tensor.affine.numpy(), phantom.image)
    np.testing.assert_array_equal(back.array, phantom.labels.array)


def test_probabilities_go_back_linearly(oblique_phantom: PhantomCase) -> None:
    image = oblique_phantom.image
    tensor = preprocess(image, preset_card("swin_unetr_btcv"))
    ramp = np.broadcast_to(np.linspace(0, 1, tensor.shape[1])[:, None, None], tensor.shape[1:])
    back = to_input_grid(np.stack([ramp, 1 - ramp]), tensor.affine.numpy(), image, kind="intensity")
    assert back.array.shape == (2, *image.shape) and back.array.dtype == np.float32
    inside = back.array.sum(axis=0) > 0.5
    np.testing.assert_allclose(back.array.sum(axis=0)[inside], 1.0, atol=1e-5)


def test_errors_name_the_problem(oblique_phantom: PhantomCase) -> None:
    card = preset_card("swin_unetr_btcv")
    with pytest.raises(ModelCardError, match="spacing"):
        build_preprocess(card.replace(spacing=(1.0, 1.0, 1.0, 1.0), slice_axis=0))
    with pytest.raises(ModelCardError, match="intensity window needs a_max"):
        build_preprocess(card.replace(intensity={"type": "window", "a_min": 0}))
    with pytest.raises(GeometryError, match="label image"):
        preprocess(oblique_phantom.labels, card)
    with pytest.raises(GeometryError, match="do not describe a 3D grid"):
        to_input_grid(np.zeros((4, 4)), lps_to_ras(3), oblique_phantom.image)
