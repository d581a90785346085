"""Fixtures for I/O tests: made-up DICOM series written by :mod:`tests.io.dicom_factory`."""

from __future__ import annotations

from pathlib import Path

import pytest
from dicom_factory import WrittenSeries, ct_image, write_series


@pytest.fixture(params=["LPS", "RAS", "oblique"])
def ct_series(request: pytest.FixtureRequest, tmp_path: Path) -> WrittenSeries:
    """A 24×20×10 CT series (0.8×0.7×2.5 mm) in each orientation, files named in random order."""
    return write_series(tmp_path / "ct", ct_image(orientation=request.param))


@pytest.fixture
def oblique_series(tmp_path: Path) -> WrittenSeries:
    return write_series(tmp_path / "ct", ct_image(orientation="oblique", seed=2))
