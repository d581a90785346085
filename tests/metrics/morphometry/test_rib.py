"""Rib centreline on a made-up curved tube of known length; clDice on simple shapes."""

from __future__ import annotations

import numpy as np
import pytest
from morph_shapes import bounded, unit, voxelise

from medswin.errors import MetricInputError
from medswin.metrics.morphometry import centreline_dice, rib_centreline

CENTRE = np.array([-40.0, 20.0, 150.0])


def curved_tube(radius_of_curvature: float, angle_deg: float, tube_radius: float, normal):
    """Points within ``tube_radius`` of a circular arc (flat ends), arc in the plane with ``normal``."""
    n = unit(normal)
    e1 = unit(np.cross(n, [0.0, 0.0, 1.0]) if abs(n[2]) < 0.9 else np.cross(n, [1.0, 0.0, 0.0]))
    e2 = np.cross(n, e1)
    limit = np.radians(angle_deg)

    def inside(p: np.ndarray) -> np.ndarray:
        rel = p - CENTRE
        a, b, h = rel @ e1, rel @ e2, rel @ n
        phi = np.arctan2(b, a)
        ring = np.hypot(a, b) - radius_of_curvature
        return (phi >= 0) & (phi <= limit) & (ring**2 + h**2 <= tube_radius**2)

    arc_start = CENTRE + radius_of_curvature * e1
    arc_end = CENTRE + radius_of_curvature * (np.cos(limit) * e1 + np.sin(limit) * e2)
    return bounded(inside, CENTRE, radius_of_curvature + tube_radius), arc_start, arc_end


@pytest.mark.parametrize(("normal", "oblique"), [((0.0, 0.3, 1.0), False), ((0.4, 1.0, 0.2), True)])
def test_curved_tube_length(normal, oblique: bool) -> None:
    inside, start, end = curved_tube(80.0, 120.0, 5.0, normal)
    low, high = CENTRE - 90.0, CENTRE + 90.0
    image = voxelise({30: [inside]}, low, high, spacing=(0.9, 1.0, 1.5), oblique=oblique)
    result = rib_centreline(image, 30)
    expected = 80.0 * np.radians(120.0)  # 167.6 mm along the tube's axis, flat end to flat end
    assert result.length_mm == pytest.approx(expected, rel=0.02)
    assert result.points_mm.shape == (500, 3)
    ends = sorted([result.start_mm, result.end_mm], key=lambda p: np.linalg.norm(p - start))
    assert np.linalg.norm(ends[0] - start) < 2.5 and np.linalg.norm(ends[1] - end) < 2.5
    # every centreline point lies near the arc: distance to the circle in its plane
    rel = result.points_mm - CENTRE
    n = unit(normal)
    h = rel @ n
    ring = np.linalg.norm(rel - np.outer(h, n), axis=1) - 80.0
    assert np.sqrt(ring**2 + h**2).max() < 1.5


def test_length_error_between_ribs() -> None:
    short, _, _ = curved_tube(80.0, 90.0, 5.0, (0.0, 0.0, 1.0))
    long, _, _ = curved_tube(80.0, 120.0, 5.0, (0.0, 0.0, 1.0))
    low, high = CENTRE - 90.0, CENTRE + 90.0
    a = rib_centreline(voxelise({1: [short]}, low, high, spacing=(1.0, 1.0, 1.5)), 1)
    b = rib_centreline(voxelise({1: [long]}, low, high, spacing=(1.0, 1.0, 1.5)), 1)
    assert a.errors(b)["length_mm"] == pytest.approx(80.0 * np.radians(30.0), rel=0.06)


def test_cl_dice() -> None:
    tube = np.zeros((40, 40, 40), dtype=bool)
    tube[5:35, 18:23, 18:23] = True
    assert centreline_dice(tube, tube) == pytest.approx(1.0)
    far = np.roll(tube, 12, axis=1)
    assert centreline_dice(tube, far) == 0.0
    thick = np.zeros_like(tube)
    thick[5:35, 16:25, 16:25] = True  # same centreline, fatter: clDice stays 1 while Dice drops
    assert centreline_dice(tube, thick) == pytest.approx(1.0)
    half = tube.copy()
    half[20:] = False  # half the rib missing: sensitivity about 1/2, precision 1
    assert centreline_dice(half, tube) == pytest.approx(2 * 0.5 / 1.5, abs=0.08)
    assert centreline_dice(np.zeros_like(tube), np.zeros_like(tube)) == 1.0
    assert centreline_dice(np.zeros_like(tube), tube) == 0.0
    with pytest.raises(MetricInputError, match="shape"):
        centreline_dice(tube, tube[:-1])
