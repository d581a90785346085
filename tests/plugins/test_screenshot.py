"""Screenshots of the whole viewer, kept as test artefacts in ``test-artifacts/`` (gitignored).

``napari_sample.png``: the CT phantom sample with its reference organs, and their volume table.
``napari_segment.png``: after a Segment run (the shipped ``demo`` model when there is one, else a
random-weight checkpoint). ``napari_dicom_study.png``: a DICOM study of two series opened with
medswin's reader, its Series dock, the liver window chosen from the presets, and a Segment run
with its volume table. ``napari_x2s.png``: two DICOM DX films of a phantom through the shipped
``demo-x2s`` model, the 3D labels and their volume table. The README's ``docs/images/napari_*.png`` are these artefacts, copied by
hand after looking at them.
"""

from __future__ import annotations

import numpy as np
import pytest
from napari_medswin._segment import CHECKPOINT_CHOICE
from napari_medswin._segment_widget import SegmentWidget
from pages import SegmentPage, SeriesPage, VolumesPage, WindowPage
from qtpy.QtWidgets import QApplication

from medswin.data.phantom import make_ct_phantom
from medswin.models.resolve import shipped_weights

pytestmark = pytest.mark.napari


def test_screenshot_after_a_run(make_napari_viewer, tiny_checkpoint, artifacts_dir, qtbot):
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1600, 900)
    viewer.open_sample("medswin", "ct_phantom")
    page = SegmentPage(viewer, SegmentWidget(viewer), name="medswin: Segment")
    page.choose_image(viewer.layers["CT phantom"])
    _show_structure(viewer, page.widget, viewer.layers["CT phantom reference"], "liver")
    _save(viewer, artifacts_dir / "napari_sample.png")

    if shipped_weights("demo") is not None:
        page.choose_model("demo")
    else:  # before the demo model is trained: the random-weight checkpoint shows the same widget state
        page.choose_model(CHECKPOINT_CHOICE)
        page.choose_checkpoint(tiny_checkpoint)
    page.run(qtbot)
    result = viewer.layers[-1]
    assert result.name.startswith("CT phantom [")
    viewer.layers["CT phantom reference"].visible = False
    _show_structure(viewer, page.widget, result, "liver")
    _save(viewer, artifacts_dir / "napari_segment.png")
    canvas = viewer.screenshot(canvas_only=True)[..., :3].astype(int)
    assert canvas.std() > 10  # not a blank canvas
    colours = {
        tuple(np.round(np.asarray(c[:3]) * 255).astype(int))
        for k, c in result.colormap.color_dict.items()
        if k
    }
    predicted = [c for c in colours if (np.abs(canvas - np.asarray(c)).sum(axis=-1) < 160).any()]
    assert predicted, "no predicted label colour is visible on the canvas"

    # the same result in 3D: switching gives the anterior, head-up view, the patient as the patient is
    viewer.layers["CT phantom"].visible = False
    viewer.dims.ndisplay = 3
    _check_anterior_view(viewer, result, right_side="liver", left_side="spleen")
    viewer.layers["CT phantom"].visible = True


def test_screenshot_of_a_dicom_study(make_napari_viewer, tmp_path, artifacts_dir, qtbot):
    from dicom_factory import write_series
    from napari_medswin._series_widget import SeriesWidget
    from napari_medswin._window_widget import WindowWidget

    study = tmp_path / "ABDOMEN_CT"
    first = write_series(
        study, make_ct_phantom(seed=11).image, series_number=3, series_description="ABD 2.5mm"
    )
    low = make_ct_phantom(shape=(48, 40, 16), spacing=(1.6, 1.6, 5.0), seed=12).image
    write_series(study, low, series_number=2, series_description="SCOUT 5mm", study_uid=first.study_uid)
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1600, 900)
    [image] = viewer.open(str(study), plugin="medswin")
    assert image.name == "ABD 2.5mm (ABDOMEN_CT)"  # the largest series, named by its description
    series = SeriesPage(viewer, SeriesWidget(viewer), name="medswin: Series", area="left")
    viewer.layers.selection.active = image
    series.press_use_selected_layer()
    assert series.series_table()["description"] == ["ABD 2.5mm", "SCOUT 5mm"]
    window = WindowPage(viewer, WindowWidget(viewer), name="medswin: Window presets", area="left")
    window.choose_image(image)
    window.choose_preset("liver")
    assert list(image.contrast_limits) == [-20.0, 140.0]

    page = SegmentPage(viewer, SegmentWidget(viewer), name="medswin: Segment")
    page.choose_image(image)
    if shipped_weights("demo") is None:
        pytest.skip("the shipped demo model is needed for a meaningful picture")
    page.choose_model("demo")
    page.run(qtbot)
    result = viewer.layers[-1]
    _show_structure(viewer, page.widget, result, "liver")
    _save(viewer, artifacts_dir / "napari_dicom_study.png")
    assert {v.name for v in page.widget.volumes if v.voxels} >= {"liver", "spleen"}


def test_screenshot_of_two_films_through_swin_x2s(make_napari_viewer, tmp_path, artifacts_dir, qtbot):
    """The X-ray widget after a demo-x2s run on phantom DRRs stored as DICOM DX films."""
    import sys
    from pathlib import Path

    from napari_medswin._x2s_widget import X2SWidget

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "x2s"))
    from x2s_factory import phantom_pair, write_dx

    from medswin.models.resolve import resolve_model

    if shipped_weights("demo-x2s") is None:
        pytest.skip("the shipped demo-x2s model is needed for a meaningful picture")
    pair = phantom_pair(resolve_model("demo-x2s", load_weights=False)[1], seed=7205)
    ap = write_dx(tmp_path / "ap.dcm", pair.ap.array[0], pair.ap.spacing[0], orientation=("L", "F"))
    lateral = write_dx(
        tmp_path / "lat.dcm", pair.lateral.array[0], pair.lateral.spacing[0], orientation=("P", "F")
    )
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1600, 1000)
    widget = X2SWidget(viewer)
    viewer.window.add_dock_widget(widget, name="medswin: Swin-X2S")
    widget.reset_choices()
    widget._models.model.value = "demo-x2s"
    widget._file["ap"].value = ap
    widget._file["lateral"].value = lateral
    qtbot.waitUntil(lambda: not widget.reading, timeout=30_000)  # files are read in a worker
    assert widget.run() is not None
    qtbot.waitUntil(lambda: not widget.running, timeout=120_000)
    labels = viewer.layers["Swin-X2S [demo-x2s]"]
    # the result alone, in 3D from the front (the films are pictures, not patient space: hidden)
    assert viewer.dims.ndisplay == 3 and labels.visible
    assert not viewer.layers["AP film"].visible and not viewer.layers["lateral film"].visible
    labels.opacity = 1.0
    _check_anterior_view(viewer, labels, right_side="liver", left_side="vertebra")  # the midline
    _save(viewer, artifacts_dir / "napari_x2s.png")
    assert {v.name for v in widget.volumes if v.voxels} >= {"liver", "vertebra"}


def _show_structure(viewer, widget, layer, name):
    """Volumes of ``layer`` in the table, the slice through ``name``'s centroid, every structure shown."""
    volumes = VolumesPage(widget)
    volumes.choose_volumes_of(layer)
    layer.opacity = 0.55
    volumes.click_row(volumes.volume_table()["name"].index(name))
    volumes.press_show_all()
    for _ in range(5):
        QApplication.processEvents()
    viewer.reset_view()  # fit the slice to the canvas once the dock widget has its size
    for _ in range(5):
        QApplication.processEvents()


def _screen_centroid(viewer, layer, name):
    """Where structure ``name`` of ``layer`` is drawn (x, y in canvas pixels), shown alone on a black canvas."""
    value = next(
        int(i) for i, n in zip(layer.features["index"], layer.features["name"], strict=True) if n == name
    )
    layer.selected_label, layer.show_selected_label = value, True
    for _ in range(10):
        QApplication.processEvents()
    shot = viewer.screenshot(canvas_only=True)[..., :3].astype(int)
    layer.show_selected_label = False
    ys, xs = np.nonzero(shot.sum(axis=-1) > 60)
    assert xs.size > 50, f"{name} is not visible"
    return float(xs.mean()), float(ys.mean())


def _check_anterior_view(viewer, layer, right_side, left_side):
    """From the rendered pixels: the patient's right organ on the screen's left, the head up, letters shown."""
    for _ in range(10):
        QApplication.processEvents()
    viewer.fit_to_view(layers=[layer])
    right_x, _ = _screen_centroid(viewer, layer, right_side)
    left_x, _ = _screen_centroid(viewer, layer, left_side)
    assert right_x < left_x  # the liver (patient's right) on the screen's left: not a mirror image
    overlays = viewer.canvas.overlays
    letters = {
        edge: overlays[f"medswin_orientation_{edge}"].text for edge in ("top", "bottom", "left", "right")
    }
    assert letters == {"top": "S", "bottom": "I", "left": "R", "right": "L"}


def _save(viewer, path):
    shot = viewer.screenshot(str(path), canvas_only=False)
    assert path.stat().st_size > 10_000
    assert shot.shape[0] >= 800 and shot.shape[1] >= 1300
