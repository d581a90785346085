"""Femur morphometry on a made-up femur: cylinder shaft, cylinder neck at a known angle, sphere head."""

from __future__ import annotations

import numpy as np
import pytest
from morph_shapes import cylinder, sphere, unit, voxelise

from medswin.errors import MetricInputError
from medswin.metrics.morphometry import FemurMorphometry, femur_morphometry


def make_femur(nsa_deg: float, head_radius: float = 23.0, neck_length: float = 50.0, oblique: bool = False):
    """A left femur: shaft tilted off the z axis, neck pointing medially (-x) and a little anteriorly (-y)."""
    shaft = unit([0.12, -0.05, 1.0])  # proximal direction
    medial = np.array([-1.0, -0.25, 0.0])
    medial = unit(medial - (medial @ shaft) * shaft)
    tilt = np.radians(180.0 - nsa_deg)  # angle between neck (towards head) and proximal shaft
    neck = np.cos(tilt) * shaft + np.sin(tilt) * medial
    junction = np.array([30.0, 10.0, 0.0])
    head = junction + neck_length * neck
    parts = [
        cylinder(junction - 170.0 * shaft, junction + 25.0 * shaft, 13.0),
        cylinder(junction, head, 14.0),
        sphere(head, head_radius),
    ]
    low = np.minimum(junction - 175 * shaft, head) - 30
    high = np.maximum(junction + 30 * shaft, head) + 30
    image = voxelise({53: parts}, low, high, spacing=(1.0, 0.9, 1.4), oblique=oblique)
    truth = {"head": head, "shaft": shaft, "neck": neck, "junction": junction}
    return image, truth


@pytest.mark.parametrize(("nsa", "oblique"), [(130.0, False), (118.0, True)])
def test_femur_parameters_match_construction(nsa: float, oblique: bool) -> None:
    image, truth = make_femur(nsa, oblique=oblique)
    result = femur_morphometry(image, 53)
    assert result.neck_shaft_angle_deg == pytest.approx(nsa, abs=1.0)
    assert result.head_radius_mm == pytest.approx(23.0, abs=0.5)
    assert result.head_diameter_mm == pytest.approx(46.0, abs=1.0)
    assert np.linalg.norm(result.head_centre_mm - truth["head"]) < 0.8
    assert np.degrees(np.arccos(result.shaft_axis @ truth["shaft"])) < 1.0
    assert np.degrees(np.arccos(result.neck_axis @ truth["neck"])) < 1.0
    assert result.neck_length_mm == pytest.approx(50.0, abs=1.0)
    assert result.offset_mm == pytest.approx(50.0 * np.sin(np.radians(180.0 - nsa)), abs=1.0)
    assert result.head_fit_rms_mm < 0.5


def test_femur_errors_between_two_results() -> None:
    a = femur_morphometry(make_femur(130.0)[0], 53)
    b = femur_morphometry(make_femur(122.0)[0], 53)
    errors = a.errors(b)
    assert errors["neck_shaft_angle_deg"] == pytest.approx(8.0, abs=2.0)
    assert errors["head_centre_mm"] > 1.0
    assert errors["shaft_axis"] < 1.5  # same shaft
    assert errors["neck_axis"] == pytest.approx(8.0, abs=2.5)
    assert a.errors(a)["head_radius_mm"] == 0.0
    assert isinstance(a, FemurMorphometry)


def test_missing_femur_or_no_shaft_is_refused() -> None:
    image, _ = make_femur(130.0)
    with pytest.raises(MetricInputError, match="not present"):
        femur_morphometry(image, 54)
    with pytest.raises(MetricInputError, match="shaft"):
        femur_morphometry(image, 53, proximal_mm=215.0)
