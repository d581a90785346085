"""One spelling of modality names and one "CT in Hounsfield units" rule (fit check, QC, viewer)."""

from __future__ import annotations

import numpy as np
import pytest

from medswin.data.phantom import crop_to_body, make_ct_phantom
from medswin.io.modality import hounsfield_profile, looks_like_hounsfield, modality_code, same_modality


@pytest.mark.parametrize(
    ("name", "code"),
    [("CT", "CT"), ("cta", "CT"), ("MRI", "MR"), (" mr ", "MR"), ("DX", "XR"), ("PET", "PT")],
)
def test_modality_names_fold_into_dicom_codes(name, code):
    assert modality_code(name) == code
    assert same_modality(name, code)


def test_different_modalities_stay_different():
    assert not same_modality("CT", "MR") and not same_modality("PT", "CT") and modality_code("SEG") == "SEG"


@pytest.fixture(scope="module")
def case():
    return make_ct_phantom(shape=(48, 44, 16), spacing=(1.5, 1.2, 5.0), orientation="oblique", seed=7)


def test_a_whole_ct_and_a_ct_cropped_to_the_body_are_hounsfield(case):
    assert looks_like_hounsfield(case.image.array)
    cropped = crop_to_body(case)
    assert float(cropped.image.array.min()) > -500.0  # no air: decided by the tissues
    profile = hounsfield_profile(cropped.image.array)
    assert profile.fat > 0.005 and profile.soft_tissue > 0.5 and profile.low > -500.0
    assert looks_like_hounsfield(profile) and looks_like_hounsfield(cropped.image.array)
    assert profile.reason().startswith("no air, but ")


def test_the_crop_keeps_the_geometry(case):
    """The cropped phantom sits where it was cut from: same voxels at the same LPS positions."""
    cropped = crop_to_body(case)
    to_original = np.linalg.inv(case.image.lps_affine) @ cropped.image.lps_affine
    np.testing.assert_allclose(to_original[:3, :3], np.eye(3), atol=1e-9)  # a shift of whole voxels
    start = to_original[:3, 3]
    np.testing.assert_allclose(start, np.round(start), atol=1e-9)
    x, y, z = (int(v) for v in np.round(start))
    nx, ny, nz = cropped.image.shape
    np.testing.assert_array_equal(
        cropped.image.array, case.image.array[:, x : x + nx, y : y + ny, z : z + nz]
    )
    np.testing.assert_array_equal(
        cropped.labels.array, case.labels.array[:, x : x + nx, y : y + ny, z : z + nz]
    )
    assert cropped.labels.grid_difference(cropped.image) is None


@pytest.mark.parametrize(
    "make",
    [
        lambda a: np.abs((a + 1000.0) * 0.8),  # MR-like magnitudes: air dark, tissues bright
        lambda a: (a + 1000.0) * 0.8 + np.random.default_rng(0).normal(0, 4, a.shape),  # noisy background
        lambda a: a + 1024.0,  # stored CT values without the rescale
        lambda a: (a - a.min()) / (a.max() - a.min()),  # rescaled to 0..1
        lambda a: (a - a.mean()) / a.std(),  # z-scored
    ],
    ids=["mr", "mr-noise", "raw-stored", "unit", "zscore"],
)
def test_volumes_that_are_not_hounsfield(case, make):
    assert not looks_like_hounsfield(make(case.image.array))
    assert not looks_like_hounsfield(make(crop_to_body(case).image.array))


def test_nothing_finite_is_not_hounsfield():
    assert hounsfield_profile(np.full((4, 4), np.nan)) is None
    assert not looks_like_hounsfield(np.zeros((0,)))
