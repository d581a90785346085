"""Vertebra morphometry on a made-up box vertebra: body box, pedicles, lamina, spinous process."""

from __future__ import annotations

import numpy as np
import pytest
from morph_shapes import box, rotation_x, voxelise

from medswin.errors import MetricInputError
from medswin.metrics.morphometry import vertebra_morphometry

CENTRE = np.array([5.0, -20.0, 300.0])


def vertebra_parts(
    tilt_deg: float = 0.0, wedge_mm: float = 0.0, arch: bool = True, centre: np.ndarray = CENTRE
) -> list:
    """Body 40 (LR) x 30 (AP) x 25 (SI) mm, canal 15 mm deep, lamina 7 mm, spinous process 30 mm.

    ``wedge_mm`` lowers the body's anterior top edge (a wedge fracture); ``tilt_deg`` turns the
    whole vertebra about the left-right axis (lordosis).
    """
    r = rotation_x(tilt_deg)  # local (L, P, S) -> LPS
    origin = centre

    def part(centre, size):
        return box(origin + r @ np.asarray(centre, dtype=float), size, r)

    body = part((0, 0, 0), (40, 30, 25))
    if wedge_mm:
        flat = body

        def body(p, flat=flat):  # cut the top by a plane sloping down anteriorly
            local = (p - origin) @ r
            top = 12.5 - wedge_mm * (15.0 - local[:, 1]) / 30.0
            return flat(p) & (local[:, 2] <= top)

    parts = [body]
    if arch:
        parts += [
            part((13, 22.5, 0), (8, 15, 12)),
            part((-13, 22.5, 0), (8, 15, 12)),
            part((0, 33.5, 0), (34, 7, 12)),
            part((0, 52, -3), (6, 30, 10)),
        ]
    return parts


def make_vertebra(tilt_deg: float = 0.0, wedge_mm: float = 0.0, oblique: bool = False, arch: bool = True):
    parts = vertebra_parts(tilt_deg, wedge_mm, arch)
    low, high = CENTRE + np.array([-30, -35, -35]), CENTRE + np.array([30, 80, 35])
    return voxelise({20: parts}, low, high, spacing=(0.8, 0.7, 1.2), oblique=oblique)


def make_spine(tilt_deg: float, oblique: bool) -> object:
    """Vertebrae 19, 20, 21 stacked 32 mm apart along a spine tilted by ``tilt_deg`` in the sagittal plane."""
    axis = rotation_x(tilt_deg) @ np.array([0.0, 0.0, 1.0])
    parts = {19 + k: vertebra_parts(tilt_deg, centre=CENTRE - (k - 1) * 32.0 * axis) for k in range(3)}
    low, high = CENTRE + np.array([-30, -55, -70]), CENTRE + np.array([30, 95, 70])
    return voxelise(parts, low, high, spacing=(0.8, 0.7, 1.2), oblique=oblique)


@pytest.mark.parametrize(("tilt", "oblique"), [(0.0, False), (14.0, True), (-18.0, False)])
def test_box_vertebra_dimensions(tilt: float, oblique: bool) -> None:
    """Tilted vertebrae are measured along the spine axis taken from their labelled neighbours."""
    image = make_spine(tilt, oblique) if tilt else make_vertebra(oblique=oblique)
    result = vertebra_morphometry(image, 20)
    assert result.body_width_mm == pytest.approx(40.0, abs=0.8)
    assert result.body_depth_mm == pytest.approx(30.0, abs=0.8)
    assert result.body_height_anterior_mm == pytest.approx(25.0, abs=0.8)
    assert result.body_height_posterior_mm == pytest.approx(25.0, abs=0.8)
    assert result.canal_depth_mm == pytest.approx(15.0, abs=0.8)
    assert result.spinous_process_length_mm == pytest.approx(37.0, abs=0.8)
    assert result.sagittal_tilt_deg == pytest.approx(abs(tilt), abs=1.0)
    assert np.linalg.norm(result.body_centre_mm - CENTRE) < 0.8


def test_explicit_axis_and_patient_axis_default() -> None:
    image = make_vertebra(10.0)
    along_spine = vertebra_morphometry(image, 20, height_axis=rotation_x(10.0) @ np.array([0.0, 0.0, -1.0]))
    assert along_spine.body_height_posterior_mm == pytest.approx(25.0, abs=0.8)
    assert along_spine.sagittal_tilt_deg == pytest.approx(10.0, abs=0.1)
    patient_axes = vertebra_morphometry(
        image, 20
    )  # no neighbours: patient axes, heights distorted by the tilt
    assert patient_axes.sagittal_tilt_deg == 0.0
    assert abs(patient_axes.body_height_anterior_mm - along_spine.body_height_anterior_mm) > 2.0


def test_wedge_lowers_the_anterior_height_only() -> None:
    result = vertebra_morphometry(make_vertebra(wedge_mm=5.0), 20)
    assert result.body_height_anterior_mm == pytest.approx(20.0, abs=1.2)
    assert result.body_height_posterior_mm == pytest.approx(25.0, abs=1.2)
    normal = vertebra_morphometry(make_vertebra(), 20)
    errors = result.errors(normal)
    assert errors["body_height_anterior_mm"] == pytest.approx(5.0, abs=1.2)
    assert errors["body_width_mm"] < 0.5


def test_no_canal_is_refused() -> None:
    with pytest.raises(MetricInputError, match="canal"):
        vertebra_morphometry(make_vertebra(arch=False), 20)


def test_c1_is_measured_on_the_patient_axis_not_towards_the_background() -> None:
    """Label 1 (C1) has no upper vertebra: label 0 is background and must not steer the spine axis."""
    parts = {
        1 + k: vertebra_parts(0.0, centre=CENTRE - (k - 1) * 32.0 * np.array([0.0, 0.0, 1.0]))
        for k in range(2)
    }
    low, high = CENTRE + np.array([-30, -55, -70]), CENTRE + np.array([30, 95, 70])
    image = voxelise(parts, low, high, spacing=(0.8, 0.7, 1.2))
    result = vertebra_morphometry(image, 1)
    assert result.body_height_anterior_mm == pytest.approx(25.0, abs=0.8)
    assert result.sagittal_tilt_deg == 0.0
