"""Shared fixtures: tiny made-up volumes with real geometry (anisotropic, LPS-flipped, oblique)."""

from __future__ import annotations

import numpy as np
import pytest

from medswin.data.phantom import PhantomCase, make_ct_phantom


@pytest.fixture(params=["LPS", "RAS", "oblique"])
def phantom(request: pytest.FixtureRequest) -> PhantomCase:
    """A small CT phantom (32×28×20 voxels, 1.2×0.9×2.5 mm) in each orientation."""
    return make_ct_phantom(shape=(32, 28, 20), spacing=(1.2, 0.9, 2.5), orientation=request.param, seed=3)


@pytest.fixture
def oblique_phantom() -> PhantomCase:
    return make_ct_phantom(shape=(32, 28, 20), spacing=(1.2, 0.9, 2.5), orientation="oblique", seed=5)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _no_downloads(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reaches the internet or the user's weights cache: a private MEDSWIN_HOME, offline,
    and the torch runtime unless a test asks for another.

    Tests of medswin.weights go online against their own loopback server (tests/weights).
    """
    monkeypatch.setenv("MEDSWIN_HOME", str(tmp_path_factory.mktemp("medswin_home")))
    monkeypatch.setenv("MEDSWIN_OFFLINE", "1")
    # torch, not auto: a test case big enough would export and calibrate OpenVINO (seconds, and labels
    # that differ from torch's at near-ties); tests of auto unset it (tests/inference/test_auto_runtime.py)
    monkeypatch.setenv("MEDSWIN_RUNTIME", "torch")
    for name in ("MEDSWIN_MIRROR", "MEDSWIN_WEIGHTS_REGISTRY"):
        monkeypatch.delenv(name, raising=False)
