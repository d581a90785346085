"""One summary-statistics rule for every medswin summary (evaluate and Swin-X2S)."""

from __future__ import annotations

import math

import pytest

from medswin.metrics.statistics import describe


def test_describe_values() -> None:
    stats = describe([1.0, 2.0, 4.0])
    assert stats == {
        "n": 3,
        "n_nonfinite": 0,
        "mean": pytest.approx(7 / 3),
        "std": pytest.approx(math.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 2)),
        "median": 2.0,
        "min": 1.0,
        "max": 4.0,
    }
    assert describe([5.0])["std"] == 0.0


def test_describe_keeps_what_would_flatter() -> None:
    stats = describe([0.5, math.inf])
    assert stats["n_nonfinite"] == 1 and stats["mean"] == math.inf and stats["max"] == math.inf


def test_describe_nothing_is_null_not_nan() -> None:
    assert describe([]) == {
        "n": 0,
        "n_nonfinite": 0,
        "mean": None,
        "std": None,
        "median": None,
        "min": None,
        "max": None,
    }
