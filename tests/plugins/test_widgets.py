"""Dock widgets in a real viewer: sample data, the volume table and jumping to a structure, Compare."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from napari_medswin._compare_widget import CompareWidget
from napari_medswin._layers import image_from_layer, image_to_layer_data
from napari_medswin._segment_widget import SegmentWidget
from napari_medswin._window_widget import WindowWidget
from pages import ComparePage, SegmentPage, WindowPage
from qtpy.QtCore import Qt

from medswin.data.phantom import PHANTOM_LABELS, make_ct_phantom
from medswin.metrics import evaluate_case

pytestmark = pytest.mark.napari

NAMES = {value: name for value, (name, _) in PHANTOM_LABELS.items()}


@pytest.fixture
def phantom_viewer(viewer):
    """A viewer holding the medswin sample: the CT phantom and its reference organ labels."""
    layers = viewer.open_sample("medswin", "ct_phantom")
    assert [layer.name for layer in layers] == ["CT phantom", "CT phantom reference"]
    return viewer


def test_sample_layers_share_one_physical_transform(phantom_viewer):
    image, labels = phantom_viewer.layers
    np.testing.assert_array_equal(image.affine.affine_matrix, labels.affine.affine_matrix)
    np.testing.assert_array_equal(image._data_to_world.affine_matrix, labels._data_to_world.affine_matrix)
    assert tuple(image.contrast_limits) == (-160.0, 240.0)
    assert image_from_layer(labels).grid_difference(image_from_layer(image)) is None


def test_volume_table_matches_metrics_and_rows_jump_to_structures(phantom_viewer, check_volume_table, qtbot):
    page = SegmentPage(phantom_viewer, SegmentWidget(phantom_viewer))
    widget = page.widget
    reference = phantom_viewer.layers["CT phantom reference"]
    page.choose_volumes_of(reference)
    labels = image_from_layer(reference)
    table = page.volume_table()
    assert list(table["name"]) == [NAMES[v] for v in sorted(NAMES)]
    check_volume_table(widget, labels)

    row = list(table["name"]).index("spleen")
    page.click_row(row)
    spleen = widget.volumes[row]
    centroid_world = np.asarray(spleen.centroid_lps_mm[::-1])
    # the slider snaps to the nearest slice; the camera centres on the centroid itself
    assert np.all(
        np.abs(np.asarray(phantom_viewer.dims.point) - centroid_world) <= np.asarray(reference.scale) / 2
    )
    np.testing.assert_allclose(phantom_viewer.camera.center[-2:], centroid_world[-2:], atol=1e-6)
    assert reference.selected_label == 2 and reference.show_selected_label
    # the slice shown now cuts through the spleen
    data_index = np.round(reference.world_to_data(phantom_viewer.dims.point)).astype(int)
    assert (reference.data[data_index[0]] == 2).any()
    page.press_show_all()
    assert not reference.show_selected_label

    # painting a structure updates the table
    before = widget.volumes[0].voxels
    reference.paint(data_index, 1, refresh=True)  # a brush of liver at the spleen's centre
    qtbot.waitUntil(lambda: widget.volumes[0].voxels > before, timeout=5_000)
    check_volume_table(widget, image_from_layer(reference))


def test_compare_scores_equal_evaluate_case(phantom_viewer, qtbot):
    reference_layer = phantom_viewer.layers["CT phantom reference"]
    reference = image_from_layer(reference_layer)
    other = make_ct_phantom(seed=11).labels  # the same grid, organs placed differently
    prediction = reference.with_array(other.array, kind="label")
    data, kwargs, _ = image_to_layer_data(prediction, "other", label_names=NAMES)
    phantom_viewer.add_labels(data, **kwargs)
    page = ComparePage(phantom_viewer, CompareWidget(phantom_viewer))
    widget = page.widget
    page.choose(phantom_viewer.layers["other"], reference_layer, tolerance_mm=3.0)
    page.run(qtbot)
    assert page.progress[0] == page.progress[1]  # the bar is full
    expected = evaluate_case(prediction, reference, nsd_tolerance_mm=3.0).rows
    assert [r["label"] for r in widget.rows] == [int(e["label"]) for e in expected]
    for row, truth in zip(widget.rows, expected, strict=True):
        assert (row["dice"], row["hd95_mm"], row["nsd"]) == (truth["dice"], truth["hd95"], truth["nsd"])
        assert row["name"] == NAMES[row["label"]]
    shown = page.score_table()
    assert list(shown["Dice"]) == [f"{r['dice']:.3f}" for r in widget.rows]
    assert list(shown["HD95 (mm)"]) == [f"{r['hd95_mm']:.2f}" for r in widget.rows]


def test_cancel_stops_a_comparison_without_scores(phantom_viewer, qtbot, notices):
    """Cancel is clicked in the GUI while the worker waits before its first label, so no score is shown."""
    reference_layer = phantom_viewer.layers["CT phantom reference"]
    other = image_from_layer(reference_layer).with_array(make_ct_phantom(seed=11).labels.array, kind="label")
    data, kwargs, _ = image_to_layer_data(other, "other", label_names=NAMES)
    phantom_viewer.add_labels(data, **kwargs)
    page = ComparePage(phantom_viewer, CompareWidget(phantom_viewer))
    page.choose(phantom_viewer.layers["other"], reference_layer)
    clicked = threading.Event()

    def click_cancel(done, total, message):  # GUI thread (queued)
        if not clicked.is_set():
            page.press_cancel()
            clicked.set()

    def hold_worker(done, total, message):  # worker thread (direct): wait for the click
        assert clicked.wait(timeout=30)

    # a signal posts its queued calls in connection order, so the GUI's slot is connected first
    page.progressed.connect(click_cancel)
    page.progressed.connect(hold_worker, Qt.ConnectionType.DirectConnection)
    page.run(qtbot)
    assert clicked.is_set()
    assert page.status == "cancelled" and page.widget.rows == []
    assert page.score_table()["Dice"] == []
    assert "Comparison cancelled" in notices.infos and notices.errors == []

    # the next Compare runs to the end
    page.progressed.disconnect(click_cancel)
    page.progressed.disconnect(hold_worker)
    page.run(qtbot)
    assert [row["label"] for row in page.widget.rows] == sorted(NAMES)
    assert page.status.startswith("other vs CT phantom reference, paired by label value")


@pytest.mark.parametrize(
    ("display_name", "widget_type"), [("Segment", SegmentWidget), ("Compare with reference", CompareWidget)]
)
def test_widgets_open_from_the_plugins_menu(phantom_viewer, display_name, widget_type):
    """napari builds the manifest's widgets itself, giving them the viewer."""
    _, widget = phantom_viewer.window.add_plugin_dock_widget("medswin", display_name)
    assert isinstance(widget, widget_type)
    if widget_type is SegmentWidget:
        assert SegmentPage(phantom_viewer, widget, dock=False).image is phantom_viewer.layers["CT phantom"]
    else:
        page = ComparePage(phantom_viewer, widget, dock=False)
        assert page.reference is phantom_viewer.layers["CT phantom reference"]


def test_volume_table_follows_undo_and_redo_and_saves_as_csv(
    phantom_viewer, check_volume_table, qtbot, tmp_path
):
    """Undo/redo emit neither paint nor data events: the table must still show the voxels as they are."""
    import csv

    page = SegmentPage(phantom_viewer, SegmentWidget(phantom_viewer))
    widget = page.widget
    reference = phantom_viewer.layers["CT phantom reference"]
    page.choose_volumes_of(reference)
    liver = widget.volumes[0]
    assert liver.name == "liver"
    original_ml = liver.volume_ml

    reference.brush_size = 5
    centre = np.array(reference.data.shape) // 2
    reference.paint(centre, 1, refresh=True)  # liver painted over whatever is at the centre
    qtbot.waitUntil(lambda: widget.volumes[0].voxels > liver.voxels, timeout=5_000)
    painted_ml = widget.volumes[0].volume_ml
    assert painted_ml > original_ml
    check_volume_table(widget, image_from_layer(reference))

    reference.undo()
    qtbot.waitUntil(lambda: widget.volumes[0].volume_ml == original_ml, timeout=5_000)
    check_volume_table(widget, image_from_layer(reference))
    assert page.volume_table()["volume (mL)"][0] == f"{original_ml:.2f}"

    reference.redo()
    qtbot.waitUntil(lambda: widget.volumes[0].volume_ml == painted_ml, timeout=5_000)
    check_volume_table(widget, image_from_layer(reference))

    written = widget.export_volumes(tmp_path / "volumes.csv")
    with open(written, newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert list(rows[0]) == [
        "label",
        "name",
        "voxels",
        "volume_ml",
        "qc",
        "qc_reason",
        "case_qc",
        "case_qc_reason",
        "model",
        "intended_use",
        "source",
        "layer",
    ]
    assert [(int(r["label"]), r["name"]) for r in rows] == [(v.label, v.name) for v in widget.volumes]
    assert [int(r["voxels"]) for r in rows] == [v.voxels for v in widget.volumes]
    np.testing.assert_allclose([float(r["volume_ml"]) for r in rows], [v.volume_ml for v in widget.volumes])
    assert float(rows[0]["volume_ml"]) == painted_ml
    assert {(r["source"], r["layer"]) for r in rows} == {("ct_phantom", "CT phantom reference")}
    assert {(r["model"], r["intended_use"]) for r in rows} == {("", "")}  # drawn labels: no model
    assert {(r["qc"], r["case_qc"]) for r in rows} == {("", "")}  # ... and no verdict
    assert not page.verdict_visible


def test_compare_with_an_unnamed_reference_shows_the_prediction_names(phantom_viewer, qtbot):
    """A NIfTI reference has no names ("label 1".."label 5"): the prediction's names label the rows."""
    named = phantom_viewer.layers["CT phantom reference"]
    unnamed_data, kwargs, _ = image_to_layer_data(image_from_layer(named), "reference.nii.gz")
    phantom_viewer.add_labels(unnamed_data.copy(), **kwargs)
    assert phantom_viewer.layers["reference.nii.gz"].features["name"].tolist()[1] == "label 1"
    page = ComparePage(phantom_viewer, CompareWidget(phantom_viewer))
    page.choose(named, phantom_viewer.layers["reference.nii.gz"])
    page.run(qtbot)
    assert [row["name"] for row in page.widget.rows] == [NAMES[v] for v in sorted(NAMES)]
    shown = page.score_table()
    assert list(shown["name"]) == [NAMES[v] for v in sorted(NAMES)]
    assert shown["compared (prediction ↔ reference)"][0] == f"{NAMES[1]} ↔ label 1"
    status = page.status
    assert status.startswith("CT phantom reference vs reference.nii.gz, paired by label value")
    assert f"1: {NAMES[1]} ↔ label 1" in status and "differ" not in status


def test_structures_get_the_anatomy_tables_colours_and_the_kidneys_differ(phantom_viewer):
    from medswin.io.anatomy import find_structure

    reference = phantom_viewer.layers["CT phantom reference"]
    colors = reference.colormap.color_dict
    for value, name in NAMES.items():
        expected = np.asarray(find_structure(name).color) / 255.0
        np.testing.assert_allclose(colors[value][:3], expected, atol=1e-6)
    right, left = (v for v in NAMES if NAMES[v] in ("kidney_right", "kidney_left"))
    assert not np.allclose(colors[right][:3], colors[left][:3])
    # the saved DICOM-SEG gets the same colours: they travel in the layer metadata
    saved = reference.metadata["medswin"]["colors"]
    assert {v: tuple(c) for v, c in saved.items()} == {v: find_structure(n).color for v, n in NAMES.items()}


def test_window_presets_follow_modality_and_body_part(viewer):
    from napari_medswin._layers import CT_WINDOW_PRESETS

    head = make_ct_phantom(shape=(16, 16, 8), seed=1).image
    head.meta["dicom"] = {"BodyPartExamined": "HEAD", "Modality": "CT"}
    data, kwargs, _ = image_to_layer_data(head, "head CT")
    head_layer = viewer.add_image(data, **kwargs)
    assert tuple(head_layer.contrast_limits) == CT_WINDOW_PRESETS["brain"] == (0.0, 80.0)

    mr = make_ct_phantom(shape=(16, 16, 8), seed=1).image
    mr = mr.with_array(mr.array + 1000.0)
    mr.meta["modality"] = "MR"
    data, kwargs, _ = image_to_layer_data(mr, "MR")
    viewer.add_image(data, **kwargs)

    _, widget = viewer.window.add_plugin_dock_widget("medswin", "Window presets")
    assert isinstance(widget, WindowWidget)
    page = WindowPage(viewer, widget, dock=False)
    page.choose_image(head_layer)
    assert page.preset == "brain" and "lung" in page.presets
    page.choose_preset("lung")
    assert tuple(head_layer.contrast_limits) == (-1350.0, 150.0)

    page.choose_image(viewer.layers["MR"])
    assert page.presets == ["auto (0.5-99.5 %)"]  # no HU windows for MRI
    low, high = viewer.layers["MR"].contrast_limits
    expected = np.percentile(viewer.layers["MR"].data, (0.5, 99.5))
    np.testing.assert_allclose((low, high), expected)


def test_a_ct_cropped_to_the_body_gets_ct_windows_and_an_mr_like_volume_percentiles(viewer, tmp_path):
    """NIfTI files name no modality: the HU rule the fit check uses decides, also without air around the body."""
    from napari_medswin._layers import CT_SOFT_TISSUE_WINDOW, CT_WINDOW_PRESETS

    from medswin.data.phantom import crop_to_body
    from medswin.io import write_image

    case = make_ct_phantom(shape=(40, 36, 12), spacing=(1.2, 0.9, 2.5), orientation="oblique", seed=4)
    cropped = crop_to_body(case).image
    assert float(cropped.array.min()) > -500.0  # no air: "min near -1024" would call it MR
    write_image(cropped, tmp_path / "body_crop.nii.gz")
    write_image(case.image.with_array(np.abs((case.image.array + 1000.0) * 0.8)), tmp_path / "mr_like.nii.gz")
    (ct_layer,) = viewer.open(str(tmp_path / "body_crop.nii.gz"), plugin="medswin")
    (mr_layer,) = viewer.open(str(tmp_path / "mr_like.nii.gz"), plugin="medswin")
    assert tuple(ct_layer.contrast_limits) == CT_SOFT_TISSUE_WINDOW

    _, widget = viewer.window.add_plugin_dock_widget("medswin", "Window presets")
    page = WindowPage(viewer, widget, dock=False)
    page.choose_image(ct_layer)
    assert page.presets == [*CT_WINDOW_PRESETS, "auto (0.5-99.5 %)"]
    page.choose_preset("bone")
    assert tuple(ct_layer.contrast_limits) == CT_WINDOW_PRESETS["bone"]
    page.choose_image(mr_layer)
    assert page.presets == ["auto (0.5-99.5 %)"]
    np.testing.assert_allclose(mr_layer.contrast_limits, np.percentile(mr_layer.data, (0.5, 99.5)), rtol=1e-5)
