"""File > Open: NIfTI, NRRD, MetaImage and DICOM (folder, zip) open in physical space; others are declined."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from dicom_factory import ct_image, write_radiograph, write_series, zip_folder
from napari.layers import Image as ImageLayer
from napari_medswin._layers import CT_SOFT_TISSUE_WINDOW, layer_to_image
from napari_medswin._reader import napari_get_reader

from medswin.errors import ImageReadError
from medswin.io import read_image, write_image

pytestmark = pytest.mark.napari


def _open(path: Path):
    reader = napari_get_reader(str(path))
    assert callable(reader), f"medswin declined {path}"
    layers = reader(str(path))
    assert len(layers) == 1
    return layers[0]


def _assert_shows(layer_data, expected):
    """The layer converts back to the file's image, and its corner voxels sit at their LPS positions."""
    data, kwargs, _ = layer_data
    back = layer_to_image(data, kwargs)
    assert back.grid_difference(expected, atol_mm=1e-6) is None
    np.testing.assert_array_equal(back.array, expected.array)
    layer = ImageLayer(data, **{k: v for k, v in kwargs.items() if k != "contrast_limits"})
    corners = np.array(np.meshgrid(*[(0, n - 1) for n in data.shape], indexing="ij")).reshape(3, -1).T
    world = np.array([layer.data_to_world(c) for c in corners])
    lps = (expected.lps_affine @ np.c_[np.zeros((8, 3)), np.ones(8)].T).T[:, :3]
    # the file's voxel (0, 0, 0) is one of the displayed corners
    assert np.min(np.linalg.norm(world - lps[0, ::-1], axis=1)) < 1e-6


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".mha", ".nrrd"])
def test_volume_files_open_on_their_geometry(small_case, tmp_path, suffix):
    path = write_image(small_case.image, tmp_path / f"ct{suffix}")
    layer_data = _open(path)
    assert layer_data[2] == "image"
    assert (
        tuple(layer_data[1]["contrast_limits"]) == CT_SOFT_TISSUE_WINDOW
    )  # HU recognised without a modality tag
    _assert_shows(layer_data, read_image(path))


@pytest.mark.parametrize("orientation", ["RAS", "oblique"])
def test_dicom_folder_and_zip_open_on_the_series_geometry(tmp_path, orientation):
    series = write_series(tmp_path / "study", ct_image(orientation=orientation))
    from_folder = _open(series.folder)
    _assert_shows(from_folder, read_image(series.folder))
    assert from_folder[1]["metadata"]["medswin"]["meta"]["format"] == "dicom"
    archive = zip_folder(series.folder, tmp_path / "study.zip")
    _assert_shows(_open(archive), read_image(archive))


def test_radiograph_opens_upright_with_its_pixel_spacing(tmp_path):
    """A 2D DX image: rows down the screen, columns across, in millimetres (no patient-space guess)."""
    path, pixels = write_radiograph(tmp_path / "chest.dcm", shape=(40, 32), pixel_spacing=(0.15, 0.14))
    data, kwargs, layer_type = _open(path)
    image = read_image(path)
    assert layer_type == "image"
    np.testing.assert_array_equal(data, pixels.T)  # the stored rows and columns, as a viewer shows them
    np.testing.assert_array_equal(layer_to_image(data, kwargs).array, image.array)
    assert layer_to_image(data, kwargs).grid_difference(image) is None
    assert kwargs["scale"] == [0.14, 0.15]  # (between rows, between columns) in mm
    low, high = kwargs["contrast_limits"]
    assert pixels.min() <= low < high <= pixels.max()  # percentiles of a DX, not the CT window


def test_segmentation_files_open_as_labels(small_case, tmp_path):
    path = write_image(small_case.labels, tmp_path / "case_001_seg.nii.gz")
    data, kwargs, layer_type = _open(path)
    assert layer_type == "labels"
    np.testing.assert_array_equal(layer_to_image(data, kwargs).array, read_image(path, kind="label").array)
    # the same voxels under a name that does not say "segmentation" stay an image
    assert _open(write_image(small_case.labels, tmp_path / "case_001.nii.gz"))[2] == "image"


def test_other_paths_are_declined_without_raising(tmp_path):
    png = tmp_path / "photo.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    plain_folder = tmp_path / "folder"
    plain_folder.mkdir()
    (plain_folder / "readme.txt").write_text("hello")
    not_zip = tmp_path / "fake.zip"
    not_zip.write_text("nope")
    for path in (png, text, plain_folder, not_zip, tmp_path / "missing.nii.gz", tmp_path / "empty"):
        assert napari_get_reader(str(path)) is None, path
    nifti = write_image(make_small_image(), tmp_path / "a.nii.gz")
    assert napari_get_reader([str(nifti), str(nifti)]) is None
    assert callable(napari_get_reader([str(nifti)]))


def test_broken_files_report_medswin_errors(tmp_path, small_case):
    """A file named like a volume is claimed; reading it then fails with medswin's message, which napari shows."""
    path = write_image(small_case.image, tmp_path / "ct.nii.gz")
    path.write_bytes(path.read_bytes()[:400])  # truncated: the header is there, the voxels are not
    reader = napari_get_reader(str(path))
    with pytest.raises(ImageReadError, match="ct.nii.gz"):
        reader(str(path))
    text = tmp_path / "notes.nii"
    text.write_text("not an image")
    with pytest.raises(ImageReadError, match="notes.nii"):
        napari_get_reader(str(text))(str(text))


def test_opening_through_the_viewer_uses_the_same_transform(viewer, tmp_path, oblique_phantom):
    path = write_image(oblique_phantom.image, tmp_path / "oblique.nii.gz")
    (layer,) = viewer.open(str(path), plugin="medswin")
    _, kwargs, _ = _open(path)
    np.testing.assert_allclose(layer.scale, kwargs["scale"])
    np.testing.assert_allclose(layer.translate, kwargs["translate"])
    np.testing.assert_allclose(layer.rotate, kwargs["rotate"])
    affine = nib.load(str(path)).affine  # RAS voxel -> world
    centre = (np.asarray(oblique_phantom.image.shape) - 1) / 2
    ras = affine @ np.r_[centre, 1.0]
    lps = ras[:3] * [-1, -1, 1]
    display_centre = (np.asarray(layer.data.shape) - 1) / 2
    np.testing.assert_allclose(layer.data_to_world(display_centre), lps[::-1], atol=1e-4)


def make_small_image():
    return ct_image(shape=(8, 6, 4))


def test_an_empty_folder_says_so_and_errors_put_the_problem_first(tmp_path):
    empty = tmp_path / "study"
    empty.mkdir()
    reader = napari_get_reader(str(empty))
    assert reader is not None  # claimed, to explain; napari's folder reader talks about subdirectories
    with pytest.raises(ImageReadError) as caught:
        reader(str(empty))
    assert str(caught.value) == f"Nothing to open: the folder is empty ({empty})"

    truncated = tmp_path / "ct.nii.gz"
    write_image(make_small_image(), truncated)
    truncated.write_bytes(truncated.read_bytes()[:100])
    with pytest.raises(ImageReadError) as caught:
        napari_get_reader(str(truncated))(str(truncated))
    message = str(caught.value)
    assert message.endswith(f"({truncated})") and not message.startswith(str(tmp_path))
    assert message[0].isupper()


def test_the_io_menu_makes_medswin_the_reader_napari_picks(viewer, tmp_path, monkeypatch):
    """Without the preference napari asks which plugin reads a DICOM folder; with it, medswin does."""
    from napari.errors import MultipleReaderError
    from napari.settings import get_settings
    from napari_medswin._reader import PREFERRED_PATTERNS

    settings = get_settings().plugins
    monkeypatch.setattr(settings, "extension2reader", {"*.mha": "napari"})
    series = write_series(tmp_path / "series", ct_image(shape=(8, 6, 4)))
    nifti = write_image(make_small_image(), tmp_path / "ct.nii.gz")
    # File > Open is viewer.open(plugin=None): without the preference napari cannot choose
    with pytest.raises(MultipleReaderError):
        viewer.open(str(series.folder), plugin=None)

    from napari._app_model import get_app_model

    app = get_app_model()
    in_menu = [getattr(item, "command", None) for item in app.menus.get_menu("napari/file/io_utilities")]
    assert "medswin.prefer_reader" in [getattr(c, "id", None) for c in in_menu]
    app.commands.execute_command("medswin.prefer_reader").result()
    preferences = get_settings().plugins.extension2reader
    assert preferences["*.mha"] == "napari"  # the user's own choice is kept
    assert {p for p, r in preferences.items() if r == "medswin"} == set(PREFERRED_PATTERNS) - {"*.mha"}
    (folder_layer,) = viewer.open(str(series.folder), plugin=None)
    assert folder_layer.metadata["medswin"]["meta"]["format"] == "dicom"
    (nifti_layer,) = viewer.open(str(nifti), plugin=None)
    assert nifti_layer.metadata["medswin"]["meta"]["format"] == "nifti"


def test_a_study_with_several_series_lists_them_and_opens_each_by_description(viewer, tmp_path):
    from napari_medswin._series_widget import SeriesWidget
    from pages import SeriesPage

    study = tmp_path / "study"
    write_series(study, ct_image(shape=(8, 6, 5)), series_description="AXIAL 2.5mm", series_number=2)
    small = ct_image(shape=(6, 4, 3))
    write_series(study, small, modality="MR", series_description="T2 TSE", series_number=5)
    (layer,) = viewer.open(str(study), plugin="medswin")
    assert layer.name == "AXIAL 2.5mm (study)"  # the largest series, named by its description

    page = SeriesPage(viewer, SeriesWidget(viewer))
    viewer.layers.selection.active = layer
    page.press_use_selected_layer()
    rows = page.widget.rows
    assert [(r["number"], r["description"], r["modality"], r["slices"]) for r in rows] == [
        (2, "AXIAL 2.5mm", "CT", 5),
        (5, "T2 TSE", "MR", 3),
    ]
    spacing = " x ".join(f"{s:g}" for s in small.spacing)
    assert rows[1]["spacing"] == spacing
    assert page.series_table()["description"] == ["AXIAL 2.5mm", "T2 TSE"]

    opened = page.open_row(1)
    assert opened.name == "T2 TSE (study)"
    assert opened.metadata["medswin"]["meta"]["dicom"]["Modality"] == "MR"
    assert sorted(opened.data.shape) == sorted(small.shape)

    archive = zip_folder(study, tmp_path / "study.zip")
    page.choose_study(archive)
    page.press_list()
    assert page.series_table()["description"] == ["AXIAL 2.5mm", "T2 TSE"]
    assert page.open_row(1).name == "T2 TSE (study.zip)"


def test_a_dicom_seg_opens_as_named_labels_on_its_source(viewer, tmp_path):
    from napari.layers import Labels
    from napari_medswin._layers import image_from_layer

    from medswin.data.phantom import PHANTOM_LABELS, make_ct_phantom
    from medswin.io.dicom_seg import write_dicom_seg
    from medswin.io.geometry import resample_to_reference

    series = write_series(tmp_path / "study", ct_image(orientation="oblique"))
    source = read_image(series.folder)
    organs = make_ct_phantom(source.shape, source.spacing, "LPS", seed=5).labels
    labels = source.with_array(organs.array, kind="label")
    names = {value: name for value, (name, _) in PHANTOM_LABELS.items()}
    path = write_dicom_seg(labels, source, tmp_path / "seg.dcm", names)

    (image_layer,) = viewer.open(str(series.folder), plugin="medswin")
    (seg_layer,) = viewer.open(str(path), plugin="medswin")
    assert isinstance(seg_layer, Labels) and seg_layer.name == "medswin segmentation (seg.dcm)"
    assert seg_layer.features["name"].tolist()[1:] == [names[v] for v in sorted(names)]
    shown = resample_to_reference(
        image_from_layer(seg_layer), image_from_layer(image_layer), interpolation="nearest"
    )
    np.testing.assert_array_equal(shown.array, labels.array)  # segment numbers equal the phantom's values
