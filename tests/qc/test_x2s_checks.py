"""The X-ray checks on their own: view agreement, sides on the X-ray output grid, one film given twice,
volumes against a card's ranges."""

from __future__ import annotations

import numpy as np
import pytest

from medswin.models.resolve import resolve_model
from medswin.qc.x2s import (
    AGREEMENT_LIMITS,
    agreement_checks,
    expected_side,
    refuse_same_film,
    same_film_similarity,
    side_checks,
    view_agreement,
    volume_checks,
)
from medswin.transforms.radiograph import UnusableRadiographError, output_grid

NAMES = {1: "liver", 2: "spleen", 3: "kidney_right", 4: "kidney_left", 5: "vertebra"}


def test_expected_sides_come_from_the_name_or_the_organ() -> None:
    assert expected_side("kidney_left") == "left" and expected_side("femur_right") == "right"
    assert expected_side("liver") == "right" and expected_side("spleen") == "left"
    assert expected_side("stomach") == "left"
    assert expected_side("vertebra") is None and expected_side("vertebrae_L1") is None


def test_view_agreement_is_the_dice_of_the_two_branches_per_structure() -> None:
    a = np.zeros((8, 8, 8), np.int64)
    b = np.zeros_like(a)
    a[:4] = 1  # 256 voxels
    b[:2] = 1  # 128, all inside a's
    a[6:, :2] = 2  # spleen only in the AP branch's volume
    agreement = view_agreement(a, b, {0: "background", **NAMES})
    assert agreement["liver"] == pytest.approx(2 * 128 / (256 + 128))
    assert agreement["spleen"] == 0.0
    assert agreement["kidney_left"] is None  # neither branch found it: not judged
    checks = {c.name: c for c in agreement_checks(agreement)}
    assert checks["agreement"].value == pytest.approx((2 * 128 / 384 + 0.0) / 2, abs=1e-4)
    assert checks["agreement"].verdict == "fail" and "swapped, duplicated" in checks["agreement"].reason
    assert "agreement:kidney_left" not in checks and checks["agreement:liver"].verdict == "ok"


def test_mean_agreement_above_the_warn_limit_is_ok() -> None:
    good = dict.fromkeys(NAMES.values(), AGREEMENT_LIMITS[0] + 0.05)
    low = dict.fromkeys(NAMES.values(), (AGREEMENT_LIMITS[0] + AGREEMENT_LIMITS[1]) / 2)
    assert agreement_checks(good)[0].verdict == "ok"
    assert agreement_checks(low)[0].verdict == "warn"


def _grid_labels(left_mm_of: dict[int, float]):
    """A demo-x2s output grid with a box per label centred ``left_mm`` towards the patient's left."""
    card = resolve_model("demo-x2s", load_weights=False)[1]
    grid = output_grid(card, (4.5, 4.5, 4.5))
    array = np.zeros(card.roi_size, np.uint8)
    for value, left_mm in left_mm_of.items():
        x = int(round((card.roi_size[0] - 1) / 2 + left_mm / 4.5))  # LPI: X runs to the patient's left
        array[x - 2 : x + 3, 20 + 6 * value : 24 + 6 * value, 28:36] = value
    return grid.with_array(array[None], kind="label")


def test_a_liver_on_the_patients_left_fails_and_says_the_film_is_probably_mirrored() -> None:
    labels = _grid_labels({1: 60.0, 2: -70.0, 3: -50.0, 4: 50.0, 5: 0.0})
    checks = {c.name: c for c in side_checks(labels, NAMES)}
    assert set(checks) == {"sides:liver", "sides:spleen", "sides:kidney_right", "sides:kidney_left"}
    assert checks["sides:liver"].verdict == "fail" and checks["sides:liver"].value == pytest.approx(60, abs=3)
    assert "patient's left" in checks["sides:liver"].reason and "mirrored" in checks["sides:liver"].reason
    assert checks["sides:spleen"].verdict == "fail"
    assert checks["sides:kidney_right"].verdict == "ok" and checks["sides:kidney_left"].verdict == "ok"


def test_a_structure_near_the_midline_is_not_judged_by_side() -> None:
    labels = _grid_labels({1: 4.5, 2: 40.0})
    checks = {c.name: c for c in side_checks(labels, NAMES)}
    assert checks["sides:liver"].verdict == "ok"  # 4.5 mm across: within the margin


def test_one_film_given_twice_or_mirrored_is_refused_and_a_real_pair_is_not(tmp_path) -> None:
    rng = np.random.default_rng(3)
    film = rng.random((64, 64)).astype(np.float32)
    other = rng.random((64, 64)).astype(np.float32)
    assert same_film_similarity(film, film) == pytest.approx(1.0)
    assert same_film_similarity(film, film[::-1]) == pytest.approx(1.0)
    # views of different width: compared on their common centre
    assert same_film_similarity(film[2:62], film) == pytest.approx(1.0)
    assert same_film_similarity(film, other) < 0.2
    with pytest.raises(
        UnusableRadiographError, match=r"^ap\.dcm and lat\.dcm: the AP and lateral films are the same"
    ):
        refuse_same_film(film, film[::-1] + 0.001, ("ap.dcm", "lat.dcm"))
    refuse_same_film(film, other, ("ap.dcm", "lat.dcm"))


def test_volumes_are_judged_only_against_ranges_a_card_gives() -> None:
    labels = _grid_labels({1: -60.0, 2: 60.0})
    assert volume_checks(labels, NAMES, None) == []
    liver_ml = float((labels.array == 1).sum()) * labels.voxel_volume_ml
    checks = {c.name: c for c in volume_checks(labels, NAMES, {"liver": [1, 10_000], "spleen": [1000, 2000]})}
    assert set(checks) == {"volume:liver", "volume:spleen"}
    assert checks["volume:liver"].verdict == "ok" and checks["volume:liver"].value == pytest.approx(
        liver_ml, 0.01
    )
    assert (
        checks["volume:spleen"].verdict == "warn"
        and "outside the plausible 1000-2000 mL" in checks["volume:spleen"].reason
    )
