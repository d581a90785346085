"""Radiographs -> Swin-X2S views: DRR files pass unchanged, DICOM DX orientation and magnification,
PNG pixel size, and clear errors for inputs that cannot be a view."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from x2s_factory import phantom_pair, tiny_card, write_dx, write_png

from medswin.errors import MedSwinError
from medswin.io.image import Image
from medswin.io.readers import read_image
from medswin.io.writers import write_image
from medswin.transforms.radiograph import (
    UnusableRadiographError,
    output_grid,
    parse_orientation,
    prepare_view,
    prepare_views,
)

CARD = tiny_card()


@pytest.fixture(scope="module")
def pair():  # type: ignore[no-untyped-def]
    return phantom_pair(CARD, seed=1000)


def test_a_drr_file_becomes_the_view_it_was(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The training DRRs, written as MHA and read back, are exactly the network inputs."""
    for view, image in (("ap", pair.ap), ("lateral", pair.lateral)):
        path = write_image(image, tmp_path / f"{view}.mha")
        prepared = prepare_view(read_image(path), view, CARD)
        np.testing.assert_allclose(prepared.array, image.array[0], atol=1e-6)
        assert prepared.voxel_mm == pytest.approx(pair.grid.spacing[0])


def test_dicom_orientation_is_undone(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A PA film stored mirrored (R\\F) or transposed (F\\L) gives the same view as the standard one."""
    view = pair.ap.array[0]
    pixel = pair.ap.spacing[0]
    standard = prepare_view(
        read_image(write_dx(tmp_path / "a.dcm", view, pixel, orientation=("L", "F"))), "ap", CARD
    )
    mirrored = prepare_view(
        read_image(write_dx(tmp_path / "b.dcm", view[::-1], pixel, orientation=("R", "F"))), "ap", CARD
    )
    transposed = prepare_view(
        read_image(write_dx(tmp_path / "c.dcm", view.T, pixel, orientation=("F", "L"))), "ap", CARD
    )
    np.testing.assert_allclose(mirrored.array, standard.array, atol=1e-6)
    np.testing.assert_allclose(transposed.array, standard.array, atol=1e-6)
    np.testing.assert_allclose(standard.array, view, atol=2e-3)  # 12-bit storage
    assert "PatientOrientation" in mirrored.notes[0]
    # without the header, the same mirrored pixels are (wrongly but predictably) taken as displayed
    png = prepare_view(
        read_image(write_png(tmp_path / "m.png", view[::-1]), spacing=(pixel, pixel)), "ap", CARD
    )
    assert np.abs(png.array - standard.array).max() > 0.2


def test_monochrome1_is_inverted_before_normalising(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    view, pixel = pair.lateral.array[0], pair.lateral.spacing[0]
    one = write_dx(tmp_path / "m1.dcm", view, pixel, orientation=("P", "F"), photometric="MONOCHROME1")
    np.testing.assert_allclose(prepare_view(read_image(one), "lateral", CARD).array, view, atol=2e-3)


def test_a_lateral_film_given_as_ap_is_refused(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write_dx(tmp_path / "lat.dcm", pair.lateral.array[0], 4.5, orientation=("A", "F"))
    with pytest.raises(MedSwinError, match=r"lat\.dcm.*A\\F.*lateral image"):
        prepare_view(read_image(path), "ap", CARD)


def test_magnification_of_the_exposure_rescales_the_voxels(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """ImagerPixelSpacing 1 mm at SID 1000 / SOD 800 (x1.25) on a 300-pixel film, model at x(2000/1800)."""
    film = np.zeros((300, 240))
    film[100:200, 60:180] = np.linspace(0, 1, 120)[None]
    path = write_dx(tmp_path / "film.dcm", film, 1.0, orientation=("L", "F"), distances_mm=(1000.0, 800.0))
    prepared = prepare_view(read_image(path), "ap", CARD)
    expected = 1.0 * (2000 / 1800) / (1000 / 800) * 300 / CARD.radiographs["cube_size"]
    assert prepared.voxel_mm == pytest.approx(expected, rel=1e-6)
    assert "magnification 1.250" in prepared.notes[1]
    plain = prepare_view(
        read_image(write_dx(tmp_path / "p.dcm", film, 1.0, orientation=("L", "F"))), "ap", CARD
    )
    assert plain.voxel_mm == pytest.approx(1.0 * 300 / 64)


def test_a_film_is_padded_square_resized_and_cropped(tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A bright bar in the middle of a wide film lands in the middle of the 64 x 64 view, scaled by 64 / 300."""
    film = np.zeros((300, 150))
    film[140:160, :] = 1.0  # a vertical bar (constant x), 20 px wide
    prepared = prepare_view(
        Image(film[None], (1.0, 1.0), (0.0, 0.0), np.eye(2)), "ap", CARD, pixel_spacing=1.0
    )
    profile = prepared.array[:, 32]
    bright = np.flatnonzero(profile > 0.5)
    assert prepared.array.shape == (64, 64)
    assert bright.min() >= 28 and bright.max() <= 35  # 20 px * 64/300 = 4.3 px around the centre
    assert prepared.array[:, :12].max() < 0.02  # y was padded by 75 px (16 view pixels) each side
    assert prepared.array[32, 18:46].min() > 0.5  # the bar spans the film's height
    assert prepared.voxel_mm == pytest.approx(300 / 64)


def test_png_needs_a_pixel_size(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write_png(tmp_path / "ap.png", pair.ap.array[0])
    with pytest.raises(MedSwinError, match=r"ap\.png.*--pixel-spacing"):
        prepare_view(read_image(path), "ap", CARD)
    prepared = prepare_view(read_image(path), "ap", CARD, pixel_spacing=4.5)
    np.testing.assert_allclose(prepared.array, pair.ap.array[0], atol=3e-3)  # 8-bit storage


def test_rgb_and_non_square_pixels(pair) -> None:  # type: ignore[no-untyped-def]
    view = pair.ap.array[0]
    rgb = Image(np.stack([view] * 3), (4.5, 4.5), (0.0, 0.0), np.eye(2))
    np.testing.assert_allclose(prepare_view(rgb, "ap", CARD).array, view, atol=1e-6)
    stretched = Image(view[:, ::2][None].copy(), (4.5, 9.0), (0.0, 0.0), np.eye(2))
    prepared = prepare_view(stretched, "ap", CARD)
    assert "non-square" in prepared.notes[-1]
    assert np.abs(prepared.array - view).mean() < 0.05


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (Image(np.zeros((1, 20, 20)), (10.0, 10.0), (0.0, 0.0), np.eye(2)), "blank"),  # a 200 mm film
        (Image(np.full((1, 20, 20), np.nan), (1.0, 1.0), (0.0, 0.0), np.eye(2)), "NaN"),
        (Image(np.zeros((1, 8, 8, 8)), (1.0,) * 3, (0.0,) * 3, np.eye(3)), "must be 2D"),
    ],
)
def test_impossible_views_are_refused(image: Image, message: str) -> None:
    with pytest.raises(MedSwinError, match=message):
        prepare_view(image, "ap", CARD)


def test_orientation_text() -> None:
    assert parse_orientation("L\\F") == ("L", "F")
    assert parse_orientation("p,f") == ("P", "F")
    for bad in ("LR", "L", "XF"):
        with pytest.raises(MedSwinError, match="not an image orientation"):
            parse_orientation(bad)


def test_views_of_different_scales_warn_and_set_the_grid(pair, caplog) -> None:  # type: ignore[no-untyped-def]
    lateral = pair.lateral.with_array(pair.lateral.array)
    lateral.spacing = (5.4, 5.4)
    front, side, spacing = prepare_views(pair.ap, lateral, CARD)
    assert spacing == pytest.approx((4.5, 5.4, 4.95))
    assert "voxel sizes" in caplog.text
    grid = output_grid(CARD, spacing)
    centre = grid.lps_affine @ np.append((np.asarray(grid.shape) - 1) / 2, 1.0)
    np.testing.assert_allclose(centre[:3], 0.0, atol=1e-9)
    assert grid.orientation.startswith("LPI")


def test_references_move_into_the_frame_of_predictions(pair) -> None:  # type: ignore[no-untyped-def]
    """A DRR case's labels sit at the CT's position; in the radiograph frame they are centred on 0, same voxels."""
    from medswin.transforms.radiograph import in_radiograph_frame

    moved = in_radiograph_frame(pair.labels)
    np.testing.assert_array_equal(moved.array, pair.labels.array)
    assert moved.spacing == pair.labels.spacing and np.allclose(moved.direction, pair.labels.direction)
    assert moved.same_grid(output_grid(CARD, moved.spacing))
    assert not pair.labels.same_grid(moved)  # the phantom's centre is not the isocentre
    permuted = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])  # X along P: not a model frame
    with pytest.raises(MedSwinError, match="model grid"):
        in_radiograph_frame(Image(np.zeros((1, 4, 4, 4)), (1.0,) * 3, (0.0,) * 3, permuted, "label"))


@pytest.mark.parametrize(("pixel_mm", "span"), [(1.0, "20 mm"), (200.0, "4000 mm")])
def test_a_film_far_outside_body_sizes_is_refused(pixel_mm: float, span: str) -> None:
    """A 20-pixel film of 1 mm (a thumbnail) or of 200 mm pixels: far outside 100-1500 mm, refused."""
    image = Image(np.random.default_rng(0).random((1, 20, 20)), (pixel_mm, pixel_mm), (0.0, 0.0), np.eye(2))
    with pytest.raises(UnusableRadiographError, match=f"spans {span}, far outside the 100-1500 mm"):
        prepare_view(image, "ap", CARD)
    with pytest.raises(UnusableRadiographError, match="check the pixel size given"):
        prepare_view(image, "ap", CARD, pixel_spacing=pixel_mm)
    assert prepare_view(image, "ap", CARD, pixel_spacing=10.0).voxel_mm == pytest.approx(200 / 64)


def test_a_film_just_outside_body_sizes_is_used_and_said() -> None:
    """80 mm (a small DRR crop) is outside 100-1500 mm but not far: prepared, with a note."""
    image = Image(np.random.default_rng(0).random((1, 20, 20)), (4.0, 4.0), (0.0, 0.0), np.eye(2))
    prepared = prepare_view(image, "ap", CARD)
    assert "spans 80 mm, outside the 100-1500 mm" in prepared.notes[-1]
