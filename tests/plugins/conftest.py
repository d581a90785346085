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


_GUI_FIXTURES = {"qapp", "qtbot", "make_napari_viewer", "viewer"}


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip tests that need Qt when there is no display, before Qt is started (it would abort the run)."""
    if not _has_display() and _GUI_FIXTURES & set(getattr(item, "fixturenames", ())):
        pytest.skip("napari viewer tests need a display: run them under `xvfb-run -a pytest ...`")


@pytest.fixture
def viewer(make_napari_viewer):
    """A hidden napari viewer (needs a display; see the module docstring)."""
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


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight Swin UNETR (feature_size 12, 64×32×32 windows) for the phantom's five organs, as a checkpoint.

    The same file format and loading path as a trained model; its predictions are arbitrary but
    deterministic, which is all the widget tests need.
    """
    import torch

    from medswin.data.phantom import PHANTOM_LABELS
    from medswin.models import ModelCard, save_checkpoint

    labels = {0: "background", **{value: name for value, (name, _) in PHANTOM_LABELS.items()}}
    card = ModelCard(
        id="tiny_phantom",
        architecture="swin_unetr",
        config={"in_channels": 1, "out_channels": len(labels), "feature_size": 12},
        channels=["CT"],
        labels=labels,
        orientation="RAS",
        spacing=None,
        intensity={
            "type": "window",
            "a_min": -175.0,
            "a_max": 250.0,
            "b_min": 0.0,
            "b_max": 1.0,
            "clip": True,
        },
        roi_size=(64, 32, 32),
        overlap=0.25,
        modality="CT",
        colors={1: (221, 130, 101), 2: (157, 108, 162), 5: (241, 214, 145)},
    )
    torch.manual_seed(0)
    model = card.create_model()
    return save_checkpoint(model, card, tmp_path_factory.mktemp("models") / "tiny_phantom.safetensors")


@pytest.fixture
def notices():
    """The errors, warnings and infos napari shows during the test (:class:`pages.Notices`)."""
    from pages import Notices

    shown = Notices()
    yield shown
    shown.close()


@pytest.fixture
def check_volume_table():
    """Assert that a Segment (or Swin-X2S) widget's volume table shows the metrics module's numbers for ``labels``."""
    import numpy as np
    from pages import VolumesPage

    from medswin.metrics import volume_ml

    def check(widget, labels) -> None:
        shown = VolumesPage(widget).volume_table()
        assert [int(v) for v in shown["label"]] == [v.label for v in widget.volumes]
        rows = zip(shown["name"], shown["voxels"], shown["volume (mL)"], strict=True)
        for structure, (name, voxels, millilitres) in zip(widget.volumes, rows, strict=True):
            mask = np.asarray(labels.array[0]) == structure.label
            assert structure.voxels == int(mask.sum()) == int(voxels)
            assert structure.volume_ml == volume_ml(mask, labels.spacing)
            assert (name, millilitres) == (structure.name, f"{structure.volume_ml:.2f}")

    return check
