"""Pelvic landmarks on a made-up pelvis whose ASIS, pubic tubercles, PSIS and ischial spines are sphere poles."""

from __future__ import annotations

import numpy as np
import pytest
from morph_shapes import bounded, box, cylinder, rotation_x, sphere, unit, voxelise

from medswin.errors import MetricInputError
from medswin.metrics.morphometry import pelvis_landmarks

CENTRE = np.array([3.0, -30.0, -120.0])


def ellipsoid(centre, semi_axes):
    c, s = np.asarray(centre, dtype=float), np.asarray(semi_axes, dtype=float)
    return lambda p: (((p - c) / s) ** 2).sum(1) <= 1.0


def make_pelvis(tilt_deg: float, oblique: bool = False):
    """Both hips (left 52 at +x, right 51 at -x) in a local frame (L, P, S), tilted about L by ``tilt_deg``.

    Landmark spheres: ASIS (±110, 0, 60) r 6, PT (±25, 0, -40) r 6, PSIS (±80, 112, 60) r 6,
    ischial spine (±47, 65, -30) r 5; every other part lies behind the plane y = -6 and is
    less extreme in the directions the landmarks are searched along.
    """
    r = rotation_x(tilt_deg)

    def world(p):
        return CENTRE + r @ np.asarray(p, dtype=float)

    def hip(sign: float) -> list:
        def at(x, y, z):
            return world((sign * x, y, z))

        # parts in local coordinates are defined through rotated copies; boxes rotate with the pelvis
        return [
            sphere(at(110, 0, 60), 6.0),
            cylinder(at(110, 0, 60), at(95, 30, 55), 5.0),
            bounded(
                lambda p: ellipsoid((0, 0, 0), (15, 50, 45))(np.einsum("ni,ij->nj", p - at(90, 60, 70), r)),
                at(90, 60, 70),
                50.0,
            ),
            box(at(78, 40, 0), (30, 40, 60), r),
            sphere(at(25, 0, -40), 6.0),
            cylinder(at(25, 0, -40), at(65, 30, -10), 5.0),
            box(at(60, 60, -40), (20, 30, 30), r),
            sphere(at(47, 65, -30), 5.0),
            cylinder(at(85, 95, 62), at(80, 112, 60), 4.0),
            sphere(at(80, 112, 60), 6.0),
        ]

    truth = {
        "asis": (110, -6, 60),
        "pubic_tubercle": (25, -6, -40),
        "psis": (80, 118, 60),
        "ischial_spine": (42, 65, -30),
    }
    expected = {}
    for name, (x, y, z) in truth.items():
        expected[f"{name}_left_mm"] = world((x, y, z))
        expected[f"{name}_right_mm"] = world((-x, y, z))
    corners = np.array([world((x, y, z)) for x in (-125, 125) for y in (-15, 130) for z in (-65, 125)])
    image = voxelise({52: hip(1.0), 51: hip(-1.0)}, corners.min(0), corners.max(0), (1.4, 1.4, 1.8), oblique)
    return image, expected, r @ np.array([0.0, -1.0, 0.0])


@pytest.mark.parametrize(("tilt", "oblique"), [(0.0, False), (15.0, True), (-10.0, False)])
def test_landmarks_and_anterior_pelvic_plane(tilt: float, oblique: bool) -> None:
    image, expected, normal = make_pelvis(tilt, oblique)
    result = pelvis_landmarks(image, left=52, right=51)
    for name, point in expected.items():
        assert np.linalg.norm(getattr(result, name) - point) < 2.0, name
    assert np.degrees(np.arccos(result.app_normal @ normal)) < 1.5
    assert result.pelvic_tilt_deg == pytest.approx(tilt, abs=1.5)
    assert result.inter_asis_mm == pytest.approx(220.0, abs=2.5)


def test_landmark_errors_and_missing_hip() -> None:
    image, _, _ = make_pelvis(0.0)
    a = pelvis_landmarks(image)
    shifted = image.with_array(np.roll(image.array, 3, axis=1))  # 3 voxels along x = 4.2 mm
    b = pelvis_landmarks(shifted)
    errors = a.errors(b)
    assert errors["asis_left_mm"] == pytest.approx(4.2, abs=0.5)
    assert errors["app_normal"] < 0.5
    with pytest.raises(MetricInputError, match="right hip"):
        pelvis_landmarks(image.with_array(np.where(image.array == 51, 0, image.array)))
    assert unit(a.app_normal) @ np.array([0.0, -1.0, 0.0]) > 0.99
