from __future__ import annotations

import numpy as np

from medswin.data.phantom import PHANTOM_LABELS, make_ct_phantom


def test_phantom_is_deterministic_and_labelled():
    a = make_ct_phantom(shape=(40, 36, 24), seed=7)
    b = make_ct_phantom(shape=(40, 36, 24), seed=7)
    np.testing.assert_array_equal(a.image.array, b.image.array)
    present = set(np.unique(a.labels.array)) - {0}
    assert present == set(PHANTOM_LABELS)
    for value, (_, hu) in PHANTOM_LABELS.items():
        assert abs(float(np.median(a.image.array[a.labels.array == value])) - hu) < 15


def test_liver_is_on_the_patients_right_in_every_orientation():
    for orientation in ("LPS", "RAS", "oblique"):
        case = make_ct_phantom(shape=(40, 36, 24), orientation=orientation, seed=1)
        idx = np.argwhere(case.labels.array[0] == 1).mean(axis=0)
        world_lps = case.image.lps_affine @ np.array([*idx, 1.0])
        centre = case.image.lps_affine @ np.array([*(np.array(case.image.shape) - 1) / 2, 1.0])
        assert world_lps[0] < centre[0], orientation  # LPS x grows to the patient's left
