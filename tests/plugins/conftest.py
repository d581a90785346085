"""Fixtures for the napari plugin tests: phantoms written to files, and a guard for viewer tests.

Viewer tests need a display: run them under ``xvfb-run -a`` (``make test`` does). Without one they
are skipped with that instruction instead of letting Qt abort the whole test session.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from medswin.data.phantom import PhantomCase, make_ct_phantom

# the DICOM test factory lives beside the I/O tests and is shared with them
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "io"))


def _has_display() -> bool:
    return sys.platform != "linux" or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


@pytest.fixture
def viewer(make_napari_viewer):  # noqa: ANN001 - napari's fixture factory
    """A hidden napari viewer (needs a display; see the module docstring)."""
    if not _has_display():
        pytest.skip("napari viewer tests need a display: run them under `xvfb-run -a pytest ...`")
    return make_napari_viewer()


@pytest.fixture(params=["LPS", "RAS", "oblique"])
def small_case(request: pytest.FixtureRequest) -> PhantomCase:
    """A 24×20×12 CT phantom (1.2×0.9×2.5 mm) in each orientation."""
    return make_ct_phantom(shape=(24, 20, 12), spacing=(1.2, 0.9, 2.5), orientation=request.param, seed=2)


@pytest.fixture
def artifacts_dir() -> Path:
    """``test-artifacts/`` at the repository root (gitignored): screenshots of viewer runs."""
    folder = Path(__file__).resolve().parents[2] / "test-artifacts"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def medswin_plugin() -> None:
    """Make npe2 discover installed plugins (a viewer does this itself), so napari finds medswin's contributions."""
    from npe2 import PluginManager

    manager = PluginManager.instance()
    manager.discover(include_npe1=False)
    try:
        manager.get_manifest("medswin")
    except KeyError:
        pytest.fail(
            "the napari-medswin manifest is not registered: reinstall with `pip install -e .[napari]`"
        )
