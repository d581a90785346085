"""The Segment widget end to end in a real viewer: a model run in a worker, the result layer, cancel, errors."""

from __future__ import annotations

import csv
import threading

import numpy as np
import pytest
from napari_medswin._layers import image_from_layer, image_to_layer_data, spatial_transform
from napari_medswin._quality import structure_quality, verdict_html
from napari_medswin._segment import CHECKPOINT_CHOICE, prediction_layer_data
from napari_medswin._segment_widget import SegmentWidget
from pages import SegmentPage
from qtpy.QtCore import Qt

from medswin.data.phantom import make_ct_phantom
from medswin.inference import Predictor
from medswin.models.card import DEFAULT_INTENDED_USE
from medswin.transforms.postprocess import Postprocess

pytestmark = pytest.mark.napari


@pytest.fixture
def case():
    """A small oblique CT phantom: the labels must follow its rotation and reorientation."""
    return make_ct_phantom(shape=(48, 40, 24), spacing=(3.0, 3.0, 4.0), orientation="oblique", seed=0)


def _docked_segment(viewer, image, name, checkpoint) -> SegmentPage:
    """A docked Segment widget with ``image`` open as layer ``name`` and ``checkpoint`` chosen."""
    data, kwargs, _ = image_to_layer_data(image, name)
    viewer.add_image(data, **kwargs)
    page = SegmentPage(viewer, SegmentWidget(viewer))
    page.choose_model(CHECKPOINT_CHOICE)
    page.choose_checkpoint(checkpoint)
    return page


@pytest.fixture
def segment(viewer, case, tiny_checkpoint):
    """A docked Segment widget, the phantom as the image layer and the tiny checkpoint chosen."""
    return _docked_segment(viewer, case.image, "CT", tiny_checkpoint)


@pytest.fixture
def errors(notices):
    """Error messages the viewer shows."""
    return notices.errors


def _run(page: SegmentPage, qtbot):
    progress: list[tuple[int, int, str]] = []
    page.progressed.connect(lambda *args: progress.append(args))
    page.run(qtbot)
    return progress


def test_run_adds_aligned_named_labels_with_a_volume_table(
    segment, viewer, case, tiny_checkpoint, qtbot, errors, check_volume_table, tmp_path
):
    assert segment.overlap == 0.25  # the card's recommended overlap
    progress = _run(segment, qtbot)
    assert errors == []
    image_layer, labels_layer = viewer.layers["CT"], viewer.layers["CT [tiny_phantom]"]
    # progress reached the GUI thread while the worker ran: the event loop kept running
    assert progress[0][2].startswith("loading") and any(m == "sliding window" for *_, m in progress)
    value, maximum = segment.progress
    assert value == maximum

    # the labels sit exactly on the image: same array shape and the same data -> world transform
    assert labels_layer.data.shape == image_layer.data.shape
    np.testing.assert_array_equal(
        labels_layer._data_to_world.affine_matrix, image_layer._data_to_world.affine_matrix
    )
    for attribute in ("scale", "translate", "rotate"):
        np.testing.assert_array_equal(getattr(labels_layer, attribute), getattr(image_layer, attribute))

    # the result is the shared Predictor's, on the input grid, with the card's names and colours
    expected = Predictor(str(tiny_checkpoint), overlap=0.25).predict(case.image)
    labels = image_from_layer(labels_layer)
    assert labels.grid_difference(case.image) is None
    np.testing.assert_array_equal(labels.array, expected.labels.array)
    card = expected.card
    names = dict(zip(labels_layer.features["index"], labels_layer.features["name"], strict=True))
    assert all(names[value] == name for value, name in card.labels.items())
    np.testing.assert_allclose(labels_layer.colormap.color_dict[1][:3], np.asarray(card.colors[1]) / 255.0)

    # the volume table describes the new layer, with the metrics module's numbers
    table = segment.volume_table()
    assert sorted(int(v) for v in table["label"]) == sorted(
        card.label_names()
    )  # absent ones listed with 0 mL
    check_volume_table(segment.widget, labels)
    # the CSV says what made the numbers: the model, its intended use (the card states none: research
    # use only), the image file; the status the wait from Run to labels
    rows = list(csv.DictReader(segment.widget.export_volumes(tmp_path / "volumes.csv").open()))
    assert {(r["model"], r["intended_use"], r["source"]) for r in rows} == {
        ("tiny_phantom", DEFAULT_INTENDED_USE, str(case.image.meta.get("path") or ""))
    }
    # the prediction's verdict stays in the panel, each row shows its structure's check, the CSV has both
    assert segment.widget.quality == expected.quality and segment.widget.quality.checks
    assert segment.verdict_visible
    assert segment.verdict == verdict_html(expected.quality, "CT [tiny_phantom]")
    checks = [structure_quality(expected.quality, v.name) for v in segment.widget.volumes]
    assert segment.volume_table()["QC"] == [verdict for verdict, _ in checks]
    assert [(r["qc"], r["qc_reason"]) for r in rows] == checks
    assert {(r["case_qc"], r["case_qc_reason"]) for r in rows} == {
        (expected.quality.verdict, expected.quality.reason)
    }
    assert segment.status.startswith("CT [tiny_phantom]: done in ") and "(model " in segment.status

    # a second run adds a new layer (earlier results may hold manual edits), with the same labels
    _run(segment, qtbot)
    assert [layer.name for layer in viewer.layers] == ["CT", "CT [tiny_phantom]", "CT [tiny_phantom] [1]"]
    np.testing.assert_array_equal(viewer.layers[2].data, labels_layer.data)


def test_cancel_stops_the_run_without_a_result(segment, viewer, qtbot, notices):
    """Cancel is clicked in the GUI while the worker waits at its first window, so the run must stop there."""
    clicked = threading.Event()

    def click_cancel(done, total, message):  # GUI thread (queued)
        if message == "sliding window" and not clicked.is_set():
            segment.press_cancel()
            clicked.set()

    def hold_worker(done, total, message):  # worker thread (direct): wait for the click
        if message == "sliding window":
            assert clicked.wait(timeout=30)

    # a signal posts its queued calls in connection order, so the GUI's slot is connected first
    segment.progressed.connect(click_cancel)
    segment.progressed.connect(hold_worker, Qt.ConnectionType.DirectConnection)
    _run(segment, qtbot)
    assert [layer.name for layer in viewer.layers] == ["CT"]
    assert segment.status == "cancelled"
    assert "Segmentation cancelled" in notices.infos and notices.errors == []


def test_a_missing_checkpoint_file_is_explained(segment, errors, viewer):
    segment.choose_checkpoint("")
    segment.press_run()
    assert not segment.running
    assert "no checkpoint chosen" in errors[-1]
    assert [layer.name for layer in viewer.layers] == ["CT"]


def test_a_model_that_may_not_suit_the_image_warns_and_runs(
    viewer, case, tiny_checkpoint, qtbot, errors, notices
):
    """An MR series given to a CT model: the reason is shown before the run, which still happens."""
    image = case.image.with_array(case.image.array)
    image.meta["modality"] = "MR"
    widget = _docked_segment(viewer, image, "MR series", tiny_checkpoint)
    assert "modality: CT" in widget.card and "intended use: research use only" in widget.card
    _run(widget, qtbot)
    assert errors == []
    assert widget.widget.fit_warnings == ["the image is MR (DICOM Modality), the model was trained on CT"]
    assert notices.warnings == [
        "tiny_phantom may not suit MR series: the image is MR (DICOM Modality), the model was trained on CT. "
        "Running anyway."
    ]
    assert "MR series [tiny_phantom]" in [layer.name for layer in viewer.layers]


def test_run_without_an_image_says_how_to_open_one(viewer, errors):
    page = SegmentPage(viewer, SegmentWidget(viewer))
    page.press_run()
    assert not page.running
    assert "Open an image first" in errors[-1]


def test_the_model_menu_offers_runnable_volume_models_and_says_how_to_get_the_others(viewer, tiny_checkpoint):
    """Shipped and imported checkpoints run; published and preset models say which command brings them.

    Swin-X2S models take two radiographs, not an image layer: they are not offered.
    """
    import shutil

    from napari_medswin._segment import model_choices

    from medswin.weights import converted_path

    converted_path("my_import").parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(tiny_checkpoint, converted_path("my_import"))  # what `medswin weights import --as` leaves
    choices = {choice.spec: choice for choice in model_choices()}
    assert [spec for spec, c in choices.items() if c.has_weights] == ["demo", "my_import"]
    assert choices["swin_unetr_btcv"].how == "medswin weights pull swin_unetr_btcv"
    synapse = choices["swin_unet_synapse"]  # its card's own note: no public weights, how to start
    assert not synapse.has_weights and "medswin import-checkpoint" in synapse.how
    assert not [spec for spec in choices if "x2s" in spec]

    page = SegmentPage(viewer, SegmentWidget(viewer), dock=False)
    assert page.model_choices == ["demo", "my_import", CHECKPOINT_CHOICE]
    # the shipped demo checkpoint predates body_region/intended_use: its shipped card supplies them
    assert "body region: abdomen (medswin's made-up CT phantoms)" in page.card
    assert "intended use: demonstration of medswin only" in page.card
    assert "swin_unetr_btcv: medswin weights pull swin_unetr_btcv" in page.missing
    assert not page.missing_shown  # folded away until asked for
    page.press_show_missing()
    assert page.missing_shown
    page.choose_model("my_import")
    assert page.card.splitlines()[0] == "model: tiny_phantom"
    assert "labels: liver, spleen, kidney_right, kidney_left, vertebra" in page.card


def test_clean_up_is_the_cli_postprocess_at_run_time_and_on_a_layer(
    segment, viewer, case, tiny_checkpoint, qtbot, errors
):
    """Keep-largest and a smallest piece (mL) give the labels the CLI's --keep-largest/--min-size-mm3 give."""
    segment.set_clean_up(
        keep_largest=True, smallest_piece_ml=0.2
    )  # mL: 200 mm3, between 5 and 6 voxels of 3x3x4 mm
    cli = Postprocess(keep_largest=True, min_size_mm3=200.0)
    raw = Predictor(str(tiny_checkpoint), overlap=0.25).predict(case.image)
    cleaned = Predictor(str(tiny_checkpoint), overlap=0.25, postprocess=cli).predict(case.image)
    assert not np.array_equal(raw.labels.array, cleaned.labels.array)  # the random model leaves pieces

    _run(segment, qtbot)
    assert errors == []
    np.testing.assert_array_equal(
        image_from_layer(viewer.layers["CT [tiny_phantom]"]).array, cleaned.labels.array
    )

    # the same clean-up on a layer already shown, as one undoable edit
    image_layer = viewer.layers["CT"]
    data, kwargs, _ = prediction_layer_data(case.image, raw, "raw", spatial_transform(image_layer, 3))
    raw_layer = viewer.add_labels(data, **kwargs)
    segment.choose_volumes_of(raw_layer)
    cleared = segment.widget.clean_up()
    assert cleared == int(np.count_nonzero(raw.labels.array != cleaned.labels.array)) > 0
    np.testing.assert_array_equal(image_from_layer(raw_layer).array, cleaned.labels.array)
    assert [v.voxels for v in segment.widget.volumes] == [
        int(np.count_nonzero(cleaned.labels.array == v.label)) for v in segment.widget.volumes
    ]
    raw_layer.undo()
    np.testing.assert_array_equal(image_from_layer(raw_layer).array, raw.labels.array)
    raw_layer.redo()
    np.testing.assert_array_equal(image_from_layer(raw_layer).array, cleaned.labels.array)
