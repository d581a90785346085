"""A screenshot of the whole viewer after a Segment run, kept as a test artefact.

Saved to ``test-artifacts/napari_segment.png`` (gitignored). ``docs/images/napari_segment.png``
in the README is this artefact from a run with the shipped ``demo`` model, copied by hand after
looking at it.
"""

from __future__ import annotations

import numpy as np
import pytest
from napari_medswin._segment import CHECKPOINT_CHOICE
from napari_medswin._widget import SegmentWidget
from qtpy.QtWidgets import QApplication

from medswin.models.resolve import shipped_weights

pytestmark = pytest.mark.napari


def test_screenshot_after_a_run(make_napari_viewer, tiny_checkpoint, artifacts_dir, qtbot):
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1400, 860)
    viewer.open_sample("medswin", "ct_phantom")
    widget = SegmentWidget(viewer)
    viewer.window.add_dock_widget(widget, name="medswin: Segment")
    widget.reset_choices()
    widget._image.value = viewer.layers["CT phantom"]
    if shipped_weights("demo") is not None:
        widget._model.value = "demo"
    else:  # before the demo model is trained: the random-weight checkpoint shows the same widget state
        widget._model.value = CHECKPOINT_CHOICE
        widget._checkpoint.value = tiny_checkpoint
    assert widget.run() is not None
    qtbot.waitUntil(lambda: not widget.running, timeout=120_000)
    result = viewer.layers[-1]
    assert result.name.startswith("CT phantom [")
    viewer.layers["CT phantom reference"].visible = False
    result.opacity = 0.55
    viewer.reset_view()
    liver = next(row for row, v in enumerate(widget.volumes) if v.name == "liver")
    widget.focus_row(liver)  # a slice through the liver; then show every structure again
    result.show_selected_label = False
    viewer.camera.center = viewer.layers["CT phantom"].extent.world.mean(axis=0)[1:]
    for _ in range(5):
        QApplication.processEvents()
    path = artifacts_dir / "napari_segment.png"
    shot = viewer.screenshot(str(path), canvas_only=False)
    assert path.stat().st_size > 10_000
    assert shot.shape[0] >= 800 and shot.shape[1] >= 1300
    canvas = viewer.screenshot(canvas_only=True)[..., :3].astype(int)
    assert canvas.std() > 10  # not a blank canvas
    colours = {
        tuple(np.round(np.asarray(c[:3]) * 255).astype(int))
        for k, c in result.colormap.color_dict.items()
        if k
    }
    predicted = [c for c in colours if (np.abs(canvas - np.asarray(c)).sum(axis=-1) < 160).any()]
    assert predicted, "no predicted label colour is visible on the canvas"
