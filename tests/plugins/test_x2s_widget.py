"""The Swin-X2S widget in a real viewer: films from files or layers shown upright, the CLI's labels in
physical space, orientation correction, cancel, the volume and bone tables, errors."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from napari_medswin._layers import image_from_layer, image_to_layer_data
from napari_medswin._quality import structure_quality, verdict_html
from napari_medswin._reader import read_layers
from napari_medswin._segment import CHECKPOINT_CHOICE
from napari_medswin._x2s import AUTO_ORIENTATION, morphometry_table_rows
from napari_medswin._x2s_widget import FROM_LAYERS, X2SWidget
from qtpy.QtCore import Qt

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "x2s"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "metrics" / "morphometry"))

from morph_shapes import box, voxelise  # noqa: E402
from x2s_factory import phantom_pair, tiny_card, tiny_network, write_dx, write_png  # noqa: E402

from medswin.cli.main import main  # noqa: E402
from medswin.data.phantom import make_ct_phantom  # noqa: E402
from medswin.inference.x2s import X2SPredictor  # noqa: E402
from medswin.io.writers import write_image  # noqa: E402
from medswin.metrics.x2s import measure_x2s_structures  # noqa: E402
from medswin.metrics.x2s_anatomy import anatomy_from_labels  # noqa: E402
from medswin.models.checkpoints import save_checkpoint  # noqa: E402
from medswin.models.resolve import resolve_model  # noqa: E402

pytestmark = pytest.mark.napari

#: a bone model's label map (x2s_anatomy finds three vertebrae and two femurs in it)
BONES = {
    0: "background",
    1: "vertebrae_T12",
    2: "vertebrae_L1",
    3: "vertebrae_L2",
    4: "femur_left",
    5: "femur_right",
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 64³ random-weight Swin-X2S checkpoint and a phantom DRR pair for it, as DICOM DX files."""
    folder = tmp_path_factory.mktemp("tiny_x2s")
    card = tiny_card()
    checkpoint = save_checkpoint(tiny_network(card, seed=5), card, folder / "tiny-x2s.safetensors")
    pair = phantom_pair(card, seed=1010)
    ap = write_dx(folder / "ap.dcm", pair.ap.array[0], pair.ap.spacing[0], orientation=("L", "F"))
    lateral = write_dx(
        folder / "lat.dcm", pair.lateral.array[0], pair.lateral.spacing[0], orientation=("P", "F")
    )
    return {
        "card": card,
        "checkpoint": checkpoint,
        "pair": pair,
        "ap": ap,
        "lateral": lateral,
        "folder": folder,
    }


@pytest.fixture
def errors(notices):
    """Error messages the viewer shows, from the widget or its worker."""
    return notices.errors


@pytest.fixture
def warnings(notices):
    return notices.warnings


@pytest.fixture
def widget(viewer):
    widget = X2SWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.reset_choices()
    return widget


def _use_checkpoint(widget, path) -> None:
    widget._models.model.value = CHECKPOINT_CHOICE
    widget._models.checkpoint.value = path


def _choose_files(widget, ap, lateral, qtbot) -> None:
    widget._file["ap"].value = ap
    widget._file["lateral"].value = lateral
    _wait_for_films(widget, qtbot)


def _wait_for_films(widget, qtbot) -> None:
    """Chosen files are read in a worker (the viewer does not freeze): wait until both are shown."""
    qtbot.waitUntil(lambda: not widget.reading, timeout=30_000)


def _run(widget, qtbot) -> list[tuple[int, int, str]]:
    progress: list[tuple[int, int, str]] = []
    widget._background.relay.progressed.connect(lambda *args: progress.append(args))
    assert widget.run() is not None and widget.running
    qtbot.waitUntil(lambda: not widget.running, timeout=120_000)
    assert widget._background.run_button.enabled and not widget._background.cancel_button.enabled
    return progress


def _stored(view: np.ndarray) -> np.ndarray:
    """The 12-bit pixels write_dx stores for a view in [0, 1]."""
    return np.round(np.clip(view, 0, 1) * 4095)


def test_dicom_films_give_the_cli_labels_in_physical_space(
    widget, viewer, qtbot, errors, warnings, tmp_path, check_volume_table
):
    """Files route with the shipped demo-x2s: DX films stored transposed (rows head to feet), as DX
    modalities store them; the labels layer is what `medswin x2s predict` writes, opened in napari."""
    card = resolve_model("demo-x2s", load_weights=False)[1]
    pair = phantom_pair(card, seed=7204)
    ap_view, lateral_view = pair.ap.array[0], pair.lateral.array[0]
    ap = write_dx(tmp_path / "ap.dcm", ap_view.T, pair.ap.spacing[0], orientation=("F", "L"))
    lateral = write_dx(tmp_path / "lat.dcm", lateral_view.T, pair.lateral.spacing[0], orientation=("F", "P"))
    assert list(widget._models.model.choices) == ["demo-x2s", CHECKPOINT_CHOICE]
    assert "model: demo-x2s" in widget._models.card.value
    _choose_files(widget, ap, lateral, qtbot)

    # both films shown upright as medswin reads them (feet down, patient's left / back on the right),
    # saying so, in mm, side by side
    ap_film, lateral_film = viewer.layers["AP film"], viewer.layers["lateral film"]
    np.testing.assert_array_equal(ap_film.data, _stored(ap_view).T)
    np.testing.assert_array_equal(lateral_film.data, _stored(lateral_view).T)
    assert "orientation F\\L from the file's header" in widget._notes["ap"].value
    assert "orientation F\\P from the file's header" in widget._notes["lateral"].value
    np.testing.assert_allclose(ap_film.scale, pair.ap.spacing)
    assert lateral_film.translate[1] >= ap_film.data.shape[1] * ap_film.scale[1]
    assert warnings == []  # the DICOM ViewPositions (PA, LL) agree with the roles

    progress = _run(widget, qtbot)
    assert errors == []
    assert [m for *_, m in progress][:2] == ["loading demo-x2s", "reading radiographs"]
    assert "network" in [m for *_, m in progress]
    labels_layer = viewer.layers["Swin-X2S [demo-x2s]"]

    out = tmp_path / "cli_labels.nii.gz"  # the reader opens files named *labels* as labels
    assert (
        main(["x2s", "predict", "--ap", str(ap), "--lateral", str(lateral), "-m", "demo-x2s", "-o", str(out)])
        == 0
    )
    ((cli_data, cli_kwargs, layer_type),) = read_layers(str(out))
    assert layer_type == "labels"
    np.testing.assert_array_equal(labels_layer.data, cli_data)
    cli_layer = viewer.add_labels(cli_data, **cli_kwargs)
    np.testing.assert_allclose(
        labels_layer._data_to_world.affine_matrix, cli_layer._data_to_world.affine_matrix, atol=1e-6
    )
    labels = image_from_layer(labels_layer)
    assert labels.orientation == "LPI" and labels.spacing == pytest.approx(pair.grid.spacing)
    assert np.allclose(
        labels.lps_affine @ [*((np.array(labels.shape) - 1) / 2), 1.0], [0, 0, 0, 1]
    )  # isocentre
    names = dict(zip(labels_layer.features["index"], labels_layer.features["name"], strict=True))
    assert all(names[value] == name for value, name in card.labels.items())

    # the volume table describes the new layer with the metrics module's numbers; demo-x2s has no bones
    assert widget._volumes_panel.layer.value is labels_layer
    check_volume_table(widget, labels)
    assert [v.name for v in widget.volumes] == [card.labels[v] for v in sorted(card.label_names())]
    assert widget.morphometry == [] and "No bones" in widget._morphometry_note.value
    assert not widget._morphometry_table.isVisibleTo(widget.native)  # the volume table keeps the room
    assert "from the file's header" in widget._notes["ap"].value and "pixel size" in widget._notes["ap"].value


def test_open_layers_need_a_pixel_size_and_match_the_png_files(widget, viewer, qtbot, errors, tiny):
    """Two 2D layers as napari opens PNG files (no physical size): refused until a pixel size is set,
    then the prediction of the same PNG files with that --pixel-spacing."""
    from PIL import Image as PILImage

    pair = tiny["pair"]
    pngs = {
        "ap": write_png(tiny["folder"] / "ap.png", pair.ap.array[0]),
        "lateral": write_png(tiny["folder"] / "lat.png", pair.lateral.array[0]),
    }
    for view, path in pngs.items():
        viewer.add_image(np.asarray(PILImage.open(path)), name=f"{view} png")
    _use_checkpoint(widget, tiny["checkpoint"])
    widget._source.value = FROM_LAYERS
    widget.reset_choices()
    # the upright films the widget adds are not offered as inputs
    assert [layer.name for layer in widget._layer["ap"].choices] == ["ap png", "lateral png"]
    widget._layer["ap"].value = viewer.layers["ap png"]
    widget._layer["lateral"].value = viewer.layers["lateral png"]
    assert [layer.name for layer in widget._layer["ap"].choices] == ["ap png", "lateral png"]
    assert "no pixel size in the file" in widget._notes["ap"].value
    assert widget.run() is None
    assert "AP film (layer) carries no pixel size" in errors[-1]

    spacing = pair.ap.spacing[0]
    widget._pixel["ap"].value = spacing
    widget._pixel["lateral"].value = spacing
    _run(widget, qtbot)
    assert errors[1:] == []
    expected = X2SPredictor(str(tiny["checkpoint"])).predict(
        pngs["ap"], pngs["lateral"], pixel_spacing=(spacing, spacing)
    )
    labels = image_from_layer(viewer.layers["Swin-X2S [tiny-x2s]"])
    np.testing.assert_array_equal(labels.array, expected.labels.array)
    assert labels.spacing == pytest.approx(expected.labels.spacing)


def test_correcting_a_mirrored_film_gives_the_prediction_of_the_right_film(
    widget, viewer, qtbot, errors, warnings, tiny, tmp_path
):
    """An AP film whose header claims L\\F but holds the mirror image: shown mirrored, one click on
    Mirror reads it R\\F, which is the correct film, and the prediction is the correct film's."""
    pair = tiny["pair"]
    mirrored = write_dx(
        tmp_path / "mirrored.dcm", pair.ap.array[0][::-1], pair.ap.spacing[0], orientation=("L", "F")
    )
    _use_checkpoint(widget, tiny["checkpoint"])
    _choose_files(widget, tiny["ap"], tiny["lateral"], qtbot)
    correct_film = np.array(viewer.layers["AP film"].data)
    widget._file["ap"].value = mirrored
    _wait_for_films(widget, qtbot)
    np.testing.assert_array_equal(viewer.layers["AP film"].data, correct_film[:, ::-1])  # shown as read

    widget._mirror["ap"].clicked()
    assert widget._orientation["ap"].value == "R\\F"
    np.testing.assert_array_equal(viewer.layers["AP film"].data, correct_film)
    assert "orientation R\\F chosen in the panel" in widget._notes["ap"].value
    _run(widget, qtbot)
    assert errors == [] and warnings == []
    predictor = X2SPredictor(str(tiny["checkpoint"]))
    right = predictor.predict(tiny["ap"], tiny["lateral"]).labels.array
    as_cli_prediction = predictor.predict(mirrored, tiny["lateral"], orientations=("R\\F", None))
    as_cli = as_cli_prediction.labels.array
    np.testing.assert_array_equal(image_from_layer(viewer.layers["Swin-X2S [tiny-x2s]"]).array, as_cli)
    np.testing.assert_array_equal(as_cli, right)
    # the X-ray checks' verdict stays in the panel beside the volume table, each row its structure's check
    quality = as_cli_prediction.quality
    panel = widget._volumes_panel
    assert panel.quality == quality and any(c.name.startswith("agreement") for c in quality.checks)
    assert panel.verdict.value == verdict_html(quality, "Swin-X2S [tiny-x2s]")
    assert panel.verdict.native.isVisibleTo(widget.native)
    assert widget._table.texts()["QC"] == [structure_quality(quality, v.name)[0] for v in widget.volumes]

    # upside down and back: the film follows, the orientation is the CLI's code
    widget._upside_down["ap"].clicked()
    assert widget._orientation["ap"].value == "R\\H"
    np.testing.assert_array_equal(viewer.layers["AP film"].data, correct_film[::-1])
    widget._orientation["ap"].value = AUTO_ORIENTATION
    np.testing.assert_array_equal(viewer.layers["AP film"].data, correct_film[:, ::-1])

    # films given the wrong roles: read as their headers say they do not fit, and their ViewPosition says why
    _choose_files(widget, tiny["lateral"], tiny["ap"], qtbot)
    assert any(  # the two films are read in parallel workers: either may report first
        "does not fit an AP view" in e and "ViewPosition LL" in e and "swapped" in e for e in errors[-2:]
    )
    assert "AP film" not in [layer.name for layer in viewer.layers]
    # read the way the roles need (as --ap-orientation/--lateral-orientation would), the warning stays
    widget._orientation["ap"].value = "L\\F"
    widget._orientation["lateral"].value = "P\\F"
    assert any("ViewPosition LL" in w and "given as the AP film" in w for w in warnings), warnings
    assert any("ViewPosition PA" in w and "given as the lateral film" in w for w in warnings), warnings
    assert "swapped" in widget._notes["ap"].value


def test_cancel_stops_the_run_without_a_result(widget, viewer, qtbot, errors, notices, tiny):
    _use_checkpoint(widget, tiny["checkpoint"])
    _choose_files(widget, tiny["ap"], tiny["lateral"], qtbot)
    clicked = threading.Event()

    def click_cancel(done, total, message):  # GUI thread (queued)
        if message == "reading radiographs" and not clicked.is_set():
            widget._background.cancel_button.native.click()
            clicked.set()

    def hold_worker(done, total, message):  # worker thread (direct): wait for the click
        if message == "reading radiographs":
            assert clicked.wait(timeout=30)

    widget._background.relay.progressed.connect(click_cancel)
    widget._background.relay.progressed.connect(hold_worker, Qt.ConnectionType.DirectConnection)
    _run(widget, qtbot)
    # no result layer; the films are read in parallel workers, so either may have been added first
    assert sorted(layer.name for layer in viewer.layers) == ["AP film", "lateral film"]
    assert widget._background.status.value == "cancelled"
    assert notices.infos == ["Swin-X2S prediction cancelled"] and errors == []


def _spine() -> object:
    """Three made-up vertebrae (body, pedicles, lamina, spinous process) 32 mm apart, labels 1-3."""

    def vertebra(z: float) -> list:
        centre = np.array([0.0, 0.0, z])
        sizes = [((0, 0, 0), (40, 30, 25)), ((13, 22.5, 0), (8, 15, 12)), ((-13, 22.5, 0), (8, 15, 12))]
        sizes += [((0, 33.5, 0), (34, 7, 12)), ((0, 52, -3), (6, 30, 10))]
        return [box(centre + np.asarray(offset, dtype=float), size) for offset, size in sizes]

    parts = {value: vertebra(32.0 * (1 - k)) for k, value in enumerate((1, 2, 3))}
    return voxelise(parts, (-25, -20, -82), (25, 70, 50), spacing=(1.0, 0.9, 1.3))


def test_a_bone_model_gets_the_morphometry_of_its_prediction(widget, viewer, qtbot, errors, tiny, tmp_path):
    """The rows are measure_x2s_structures' on the labels shown; Measure repeats it on any labels layer."""
    card = tiny_card(id="tiny-bones", labels=BONES)
    checkpoint = save_checkpoint(tiny_network(card, seed=5), card, tmp_path / "bones.safetensors")
    _use_checkpoint(widget, checkpoint)
    _choose_files(widget, tiny["ap"], tiny["lateral"], qtbot)
    _run(widget, qtbot)
    assert errors == []
    layer = viewer.layers["Swin-X2S [tiny-bones]"]
    anatomy = anatomy_from_labels(BONES)
    expected = measure_x2s_structures(image_from_layer(layer), anatomy)
    assert expected  # the random network paints some of the bones
    assert widget._morphometry_table.isVisibleTo(widget.native)
    shown = widget._morphometry_table.texts()
    rows = morphometry_table_rows(expected)
    assert shown["bone"] == [r["structure"] for r in rows] and shown["parameter"] == [
        r["parameter"] for r in rows
    ]
    assert shown["status"] == [r["status"] for r in rows]
    for row, measured in zip(widget.morphometry, expected, strict=True):
        assert (row["status"], row["reason"]) == (measured["status"], measured["reason"])
        if measured["value"] is not None:
            np.testing.assert_allclose(row["value"], measured["value"], rtol=1e-6, atol=1e-6)

    # well-formed vertebrae drawn as a labels layer: measured on request, with the library's values
    spine = _spine()
    data, kwargs, _ = image_to_layer_data(spine, "spine", label_names={k: BONES[k] for k in (1, 2, 3)})
    spine_layer = viewer.add_labels(data, **kwargs)
    widget._volumes_panel.show_layer(spine_layer)
    widget.measure()
    qtbot.waitUntil(lambda: not widget.running, timeout=60_000)
    assert errors == []
    expected = measure_x2s_structures(image_from_layer(spine_layer), anatomy)
    assert [r["status"] for r in widget.morphometry] == ["ok"] * len(expected)
    assert widget._morphometry_table.texts()["value"] == [
        r["value"] for r in morphometry_table_rows(expected)
    ]
    depth = next(
        r
        for r in widget.morphometry
        if (r["structure"], r["parameter"]) == ("vertebrae_L1", "canal_depth_mm")
    )
    assert depth["value"] == pytest.approx(15.0, abs=1.0)
    assert "Bone measurements of spine" in widget._morphometry_note.value


def test_a_file_that_is_not_a_radiograph_is_refused_with_a_reason(
    widget, viewer, errors, tiny, tmp_path, qtbot
):
    case = make_ct_phantom(shape=(24, 20, 12), spacing=(1.2, 0.9, 2.5), seed=2)
    ct = write_image(case.image, tmp_path / "ct.nii.gz")
    _use_checkpoint(widget, tiny["checkpoint"])
    widget._file["ap"].value = ct
    _wait_for_films(widget, qtbot)
    assert "AP film" in errors[-1] and "ct.nii.gz" in errors[-1] and "must be 2D" in errors[-1]
    assert "AP film" not in [layer.name for layer in viewer.layers]
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    widget._file["lateral"].value = text
    _wait_for_films(widget, qtbot)
    assert errors[-1].startswith("lateral film:") and "notes.txt" in errors[-1]
    count = len(errors)
    assert widget.run() is None and len(errors) == count + 1
    assert [layer.name for layer in viewer.layers] == []


def test_run_refuses_an_uncalibrated_cr_and_a_film_given_twice(widget, viewer, qtbot, errors, tiny, tmp_path):
    """Issue 26: a CR with PixelSpacing 0\\0 once ran at an assumed 1 mm (a 50-litre liver); Run now
    refuses it naming the pixel-size box, and refuses one film given as both views. No labels are added."""
    import pydicom

    pair = tiny["pair"]
    cr = write_dx(tmp_path / "cr.dcm", pair.ap.array[0], 1.0, orientation=("L", "F"))
    ds = pydicom.dcmread(cr)
    ds.Modality = "CR"
    del ds.ImagerPixelSpacing
    ds.PixelSpacing = [0, 0]
    ds.save_as(cr)
    _use_checkpoint(widget, tiny["checkpoint"])
    _choose_files(widget, cr, tiny["lateral"], qtbot)
    _run(widget, qtbot)
    # problem first, file second (as every error of the panel)
    assert errors[-1].startswith("The film carries no usable pixel size (PixelSpacing 0\\0)"), errors
    assert errors[-1].endswith(f"({tmp_path / 'cr.dcm'})")
    assert "pixel-size box" in errors[-1]
    assert not [layer for layer in viewer.layers if layer.name.startswith("Swin-X2S")]

    widget._pixel["ap"].value = pair.ap.spacing[0]  # the fix the message names: then it runs
    _run(widget, qtbot)
    assert "Swin-X2S [tiny-x2s]" in viewer.layers
    count = len(viewer.layers)

    _choose_files(widget, tiny["ap"], tiny["ap"], qtbot)
    widget._orientation["lateral"].value = "P\\F"  # the AP film read as a lateral
    widget._pixel["ap"].value = 0.0
    _run(widget, qtbot)
    assert "the AP and lateral films are the same picture" in errors[-1], errors
    assert len(viewer.layers) == count


def test_the_widget_opens_from_the_plugins_menu(viewer):
    _, widget = viewer.window.add_plugin_dock_widget("medswin", "Swin-X2S from two X-rays")
    assert isinstance(widget, X2SWidget)
    assert widget._models.model.value == "demo-x2s"


def test_swap_one_film_twice_stale_results_and_the_csv_source(
    widget, viewer, qtbot, errors, warnings, tiny, tmp_path
):
    """Films given the wrong roles: Swap gives the correct pair's labels; one film twice is not called a swap;
    new films clear the last run's status and table; the CSV names the model, its intended use and both films."""
    _use_checkpoint(widget, tiny["checkpoint"])
    assert widget._pixel["ap"].native.text() == "from file"  # no film yet
    _choose_files(widget, tiny["lateral"], tiny["ap"], qtbot)  # swapped: the headers refuse both roles
    message = next(e for e in errors if e.startswith("lateral film: "))  # problem first, file second
    assert message.startswith("lateral film: Image orientation") and "swapped" in message
    assert message.index("does not fit") < message.index(str(tiny["ap"]))
    assert widget._swap.enabled
    widget._swap.clicked()
    assert (widget._file["ap"].value, widget._file["lateral"].value) == (tiny["ap"], tiny["lateral"])
    assert {"AP film", "lateral film"} <= {layer.name for layer in viewer.layers}
    spacing = tiny["pair"].ap.spacing[0]
    assert widget._pixel["ap"].native.specialValueText() == f"from file ({spacing:.3g} mm)"
    _run(widget, qtbot)
    layer = viewer.layers["Swin-X2S [tiny-x2s]"]
    expected = X2SPredictor(str(tiny["checkpoint"])).predict(
        read_film_file(tiny["ap"]), read_film_file(tiny["lateral"])
    )
    np.testing.assert_array_equal(image_from_layer(layer).array, expected.labels.array)
    status = widget._background.status.value
    assert status.startswith("Swin-X2S [tiny-x2s]: done in ") and "(model " in status
    # films and the 3D result never drawn together: the result is shown in 3D, the films hidden
    assert viewer.dims.ndisplay == 3 and layer.visible
    assert not viewer.layers["AP film"].visible and not viewer.layers["lateral film"].visible
    assert not widget._show_films.native.isHidden()  # a button brings the films back

    csv = widget._volumes_panel.export_volumes(tmp_path / "volumes.csv")
    import csv as csv_module

    rows = list(csv_module.DictReader(csv.open()))
    assert rows and {r["model"] for r in rows} == {"tiny-x2s"}
    assert {r["intended_use"] for r in rows} == {
        "research use only: not a medical device, not for diagnosis or treatment"
    }
    assert {r["source"] for r in rows} == {f"AP {tiny['ap']}; lateral {tiny['lateral']}"}

    # new films: the old status, progress and table go; the films come back in 2D
    widget._file["lateral"].value = tiny["ap"]  # one film for both roles
    assert widget.reading and widget._notes["lateral"].value == "reading the film…"  # not in the GUI thread
    _wait_for_films(widget, qtbot)
    assert widget._background.status.value == "" and widget._background.progress.value == 0
    assert widget.volumes == [] and widget._table.rowCount() == 0
    assert viewer.dims.ndisplay == 2 and viewer.layers["AP film"].visible and not layer.visible
    assert not widget._swap.enabled
    assert "same image" in warnings[-1] and not any("Swap" in w for w in warnings)


def read_film_file(path):
    from medswin.io.readers import read_image

    return read_image(path)
