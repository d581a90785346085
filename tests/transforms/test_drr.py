"""DRRs: analytic path lengths (parallel and cone beam), anatomy at the expected detector position
on the CT phantom in every orientation, the label volume's geometry, and input errors."""

from __future__ import annotations

import numpy as np
import pytest

from medswin.data.phantom import make_ct_phantom
from medswin.errors import GeometryError, MedSwinError
from medswin.io.image import Image
from medswin.transforms.drr import (
    MU_WATER_PER_MM,
    DrrGeometry,
    biplanar_drr,
    hu_to_attenuation,
    line_integrals,
)

SMALL = DrrGeometry(cube_size=64, volume_size=(48, 48, 64), oversample=1, values="full_precision")


def _box_volume(n: int, half: int) -> np.ndarray:
    """``n``³ zeros with a centred cube of ones, ``2*half`` voxels wide."""
    volume = np.zeros((n, n, n), dtype=np.float32)
    c = n // 2
    volume[c - half : c + half, c - half : c + half, c - half : c + half] = 1.0
    return volume


def _ray_box_length(source: np.ndarray, target: np.ndarray, half_mm: float) -> float:
    """Exact length (mm) of the segment source->target inside the cube |x|,|y|,|z| <= half_mm (slab method)."""
    d = target - source
    t0, t1 = 0.0, 1.0
    for axis in range(3):
        if abs(d[axis]) < 1e-12:
            if abs(source[axis]) > half_mm:
                return 0.0
            continue
        a, b = sorted(((-half_mm - source[axis]) / d[axis], (half_mm - source[axis]) / d[axis]))
        t0, t1 = max(t0, a), min(t1, b)
    return max(0.0, t1 - t0) * float(np.linalg.norm(d))


def test_parallel_projection_of_a_uniform_cube_is_its_side() -> None:
    volume = 0.02 * _box_volume(40, 10)  # 20 voxels of 2 mm: a 40 mm cube of mu = 0.02 / mm
    geometry = DrrGeometry(projection="parallel")
    for view in ("ap", "lateral"):
        image = line_integrals(volume, 2.0, view, (40, 40), 2.0, geometry)
        np.testing.assert_allclose(image[12:28, 12:28], 0.02 * 40.0, rtol=1e-5)
        assert np.abs(image[:8]).max() == 0 and np.abs(image[:, -8:]).max() == 0
        assert image.sum() == pytest.approx(
            0.02 * 40.0**3 / 4.0, rel=1e-5
        )  # integral = mu * volume / pixel area


@pytest.mark.parametrize("view", ["ap", "lateral"])
def test_cone_beam_path_lengths_match_ray_box_intersection(view: str) -> None:
    """Strong magnification (source 200 mm, detector 400 mm): every ray's integral is its chord through the cube."""
    geometry = DrrGeometry(source_to_isocentre_mm=200.0, source_to_detector_mm=400.0, lateral_source="left")
    volume = _box_volume(40, 10)  # cube of half-side 20 mm on a 2 mm grid (voxel centres at +-1, ..., +-39)
    image = line_integrals(volume, 2.0, view, (60, 60), 2.0, geometry)
    axis = 1 if view == "ap" else 0
    source = np.zeros(3)
    source[axis] = 200.0  # posterior (AP) / left (lateral)
    errors = []
    for i in range(0, 60, 3):
        for j in range(0, 60, 3):
            u, v = (i - 29.5) * 2.0, (j - 29.5) * 2.0
            target = np.zeros(3)
            target[axis] = -200.0
            target[1 - axis], target[2] = u, v
            errors.append(image[i, j] - _ray_box_length(source, target, 20.0))
    # interior rays exactly; rays grazing an edge within the one-voxel blur of bilinear sampling
    assert np.median(np.abs(errors)) < 1e-3
    assert np.abs(errors).max() < 2.0 * 2.0
    # shadow half-widths: the face nearest the source magnifies by 400/180, the far face by 400/220
    row = image[:, 30]
    u = (np.arange(60) - 29.5) * 2.0
    assert row[np.abs(u) < 20.0 * 400 / 220 - 2].min() > 40.0 * 0.99
    assert row[np.abs(u) > 20.0 * 400 / 180 + 2].max() < 1e-6


def test_biplanar_drr_of_a_uniform_cube_has_the_analytic_line_integral() -> None:
    """End to end on an anisotropic CT grid: 40 mm water-equivalent-1000-HU cube in air, parallel rays."""
    shape, spacing = (80, 64, 40), (1.5, 2.0, 3.0)  # extents 120, 128, 120 mm
    hu = np.full(shape, -1000.0, dtype=np.float32)
    idx = [np.arange(n) * s - (n - 1) * s / 2 for n, s in zip(shape, spacing)]
    xx, yy, zz = np.meshgrid(*idx, indexing="ij")
    hu[(np.abs(xx) < 20) & (np.abs(yy) < 20) & (np.abs(zz) < 20)] = 1000.0
    ct = Image(hu[None], spacing, (10.0, -5.0, 30.0), np.eye(3))
    geometry = DrrGeometry(
        cube_size=64,
        volume_size=(40, 40, 64),
        projection="parallel",
        intensity="attenuation",
        oversample=2,
        values="full_precision",
    )
    drr = biplanar_drr(ct, geometry=geometry)
    mu = hu_to_attenuation(np.array([1000.0]), "attenuation")[0]
    assert mu == pytest.approx(2 * MU_WATER_PER_MM)
    for image in (drr.ap, drr.lateral):
        assert image.spacing == pytest.approx((2.0, 2.0))  # longest extent 128 mm / 64
        assert image.meta["drr"]["raw_max"] == pytest.approx(mu * 40.0, rel=0.03)
        assert image.meta["drr"]["raw_min"] == pytest.approx(0.0, abs=1e-6)
        assert image.array.min() == 0.0 and image.array.max() == 1.0
        centre = image.array[0, 16:24, 28:36]
        np.testing.assert_allclose(centre, 1.0, atol=0.03)


def _vertebra_mm(labels: Image) -> np.ndarray:
    """Vertebra (label 5) centroid in model-grid millimetres from the grid centre, axes (X, Y, Z)."""
    idx = np.argwhere(labels.array[0] == 5).mean(axis=0)
    return (idx - (np.asarray(labels.shape) - 1) / 2) * np.asarray(labels.spacing)


def _raw(image: Image) -> np.ndarray:
    """Undo the [0, 1] normalisation: line integrals (HU·mm)."""
    info = image.meta["drr"]
    return image.array[0] * (info["raw_max"] - info["raw_min"]) + info["raw_min"]


@pytest.mark.parametrize("orientation", ["LPS", "RAS", "oblique"])
def test_phantom_spine_appears_where_it_projects(orientation: str) -> None:
    """The spine's shadow (DRR minus the DRR without bone) sits at its cone-beam projection in both views."""
    case = make_ct_phantom(shape=(64, 64, 40), spacing=(4.0, 4.0, 5.0), orientation=orientation, seed=2)
    no_bone = case.image.with_array(
        np.where(case.labels.array == 5, 40.0, case.image.array).astype(np.float32)
    )
    drr = biplanar_drr(case.image, case.labels, SMALL)
    soft = biplanar_drr(no_bone, case.labels, SMALL)
    labels = drr.labels
    assert labels.orientation == "LPI" and labels.shape == (48, 48, 64)
    x, y, z = _vertebra_mm(labels)
    g = SMALL
    pixel = drr.ap.spacing[0]
    # AP: rays along Y, source posterior (+Y) -> detector u = x * SDD / (SID - y); columns likewise with z
    expected_ap = x * g.source_to_detector_mm / (g.source_to_isocentre_mm - y) / pixel + 23.5
    # lateral: rays along X, source on the patient's left (+X) -> u = y * SDD / (SID - x)
    expected_lat = y * g.source_to_detector_mm / (g.source_to_isocentre_mm - x) / pixel + 23.5
    expected_col = z * g.source_to_detector_mm / (g.source_to_isocentre_mm - y) / pixel + 31.5
    for view, expected in (("ap", expected_ap), ("lateral", expected_lat)):
        shadow = _raw(getattr(drr, view)) - _raw(getattr(soft, view))
        assert shadow.min() > -1e-3 * shadow.max()  # bone only adds
        rows, cols = np.indices(shadow.shape)
        assert (rows * shadow).sum() / shadow.sum() == pytest.approx(expected, abs=0.75)
        if view == "ap":
            assert (cols * shadow).sum() / shadow.sum() == pytest.approx(expected_col, abs=0.75)
    # the spine is posterior: in the lateral view its shadow lies on the high-index (posterior) side
    assert expected_lat > 30
    # spleen (120 HU, patient's left) is brighter than the mirrored place on the right in the AP view
    spleen = (labels.array[0] == 2).sum(axis=1) > 0  # its AP footprint (X, Z)
    ap = drr.ap.array[0]
    assert ap[spleen].mean() > ap[::-1][spleen].mean()


@pytest.mark.parametrize("orientation", ["RAS", "oblique"])
def test_label_volume_keeps_world_positions(orientation: str) -> None:
    case = make_ct_phantom(shape=(48, 48, 32), spacing=(3.0, 3.5, 5.0), orientation=orientation, seed=4)
    drr = biplanar_drr(case.image, case.labels, SMALL)
    for value in (1, 5):
        before = case.labels.lps_affine @ np.append(
            np.argwhere(case.labels.array[0] == value).mean(axis=0), 1
        )
        after = drr.labels.lps_affine @ np.append(np.argwhere(drr.labels.array[0] == value).mean(axis=0), 1)
        assert np.linalg.norm(before[:3] - after[:3]) < drr.labels.spacing[0]
    assert drr.labels.spacing == pytest.approx((168.0 / 64,) * 3)  # longest extent 48 * 3.5 mm over 64 voxels
    assert drr.grid.same_grid(drr.labels)
    ap, lateral = drr.model_inputs()
    assert ap.shape == lateral.shape == (1, 1, 48, 64) and ap.dtype == np.float32


def test_default_sizes() -> None:
    case = make_ct_phantom(shape=(40, 40, 30), spacing=(5.0, 5.0, 6.0), seed=1)
    drr = biplanar_drr(case.image, case.labels, DrrGeometry(oversample=1, values="full_precision"))
    assert drr.ap.shape == drr.lateral.shape == (128, 160)
    assert drr.labels.shape == (128, 128, 160)
    assert drr.ap.meta["drr"]["source_to_isocentre_mm"] == 1800.0
    assert drr.ap.array.min() >= 0.0 and drr.ap.array.max() <= 1.0
    # the official program's DRR: 160 columns x 160 * 0.5 * int(2 * 200 / 200) rows of 200 / 160 mm
    official = biplanar_drr(case.image, case.labels)
    assert official.ap.shape == official.lateral.shape == (160, 160)
    assert official.ap.spacing == pytest.approx((1.25, 1.25))
    assert official.labels.shape == (128, 128, 160)
    assert official.ap.array.min() == 0.0 and official.ap.array.max() == 1.0
    with pytest.raises(MedSwinError, match="prepare_view"):
        official.model_inputs()


def test_intensity_conversions() -> None:
    hu = np.array([-1000.0, -90.0, 0.0, 40.0, 600.0])
    np.testing.assert_allclose(hu_to_attenuation(hu), [0, 0, 0, 40, 600])
    np.testing.assert_allclose(hu_to_attenuation(hu, threshold_hu=100.0), [0, 0, 0, 0, 500])
    mu = hu_to_attenuation(hu, "attenuation")
    np.testing.assert_allclose(mu, MU_WATER_PER_MM * np.array([0, 0.91, 1.0, 1.04, 1.6]), rtol=1e-6)
    with pytest.raises(MedSwinError, match="intensity"):
        hu_to_attenuation(hu, "density")


def test_bad_inputs_are_refused() -> None:
    case = make_ct_phantom(shape=(24, 24, 16), spacing=(4.0, 4.0, 5.0), seed=0)
    moved = Image(case.labels.array, case.labels.spacing, (0.0, 0.0, 0.0), case.labels.direction, "label")
    with pytest.raises(GeometryError, match="not on the CT's grid"):
        biplanar_drr(case.image, moved, SMALL)
    two_channels = case.image.with_array(np.concatenate([case.image.array] * 2))
    with pytest.raises(GeometryError, match="one-channel"):
        biplanar_drr(two_channels, geometry=SMALL)
    with pytest.raises(MedSwinError, match="X == Y"):
        biplanar_drr(case.image, geometry=DrrGeometry(cube_size=64, volume_size=(48, 40, 64)))
    with pytest.raises(MedSwinError, match="source_to_isocentre_mm"):
        biplanar_drr(case.image, geometry=DrrGeometry(source_to_isocentre_mm=2500.0))
    with pytest.raises(MedSwinError, match="full_precision"):
        biplanar_drr(case.image, geometry=DrrGeometry(projection="parallel"))
    with pytest.raises(MedSwinError, match="frame"):
        biplanar_drr(case.image, geometry=DrrGeometry(frame="LSI"))
