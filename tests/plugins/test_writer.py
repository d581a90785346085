"""Saving labels layers: NIfTI on the source grid and header, DICOM-SEG and RTSTRUCT against the source
series, surface meshes in patient mm."""

from __future__ import annotations

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
import pytest
import trimesh
from dicom_factory import ct_image, write_series
from napari.layers import Labels
from napari.plugins.io import save_layers
from napari_medswin._layers import image_to_layer_data, layer_to_image
from napari_medswin._reader import napari_get_reader
from napari_medswin._writer import write_labels_dicom_seg, write_labels_file, write_rtstruct
from test_rtstruct_output import dciodvfy_errors, dice, rasterise

from medswin.data.phantom import PHANTOM_LABELS, make_ct_phantom
from medswin.errors import ImageWriteError
from medswin.io import read_image, write_image

pytestmark = [pytest.mark.napari, pytest.mark.usefixtures("medswin_plugin")]

NAMES = {value: name for value, (name, _) in PHANTOM_LABELS.items()}


def _labels_layer_for(image, seed=1):
    """A Labels layer of phantom organs on ``image``'s grid, made as the Segment widget makes them."""
    case = make_ct_phantom(image.shape, image.spacing, "LPS", seed=seed)
    labels = image.with_array(case.labels.array, kind="label")
    data, kwargs, _ = image_to_layer_data(labels, "organs", label_names=NAMES, colors={1: (220, 20, 60)})
    return Labels(data, **kwargs), labels


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd"])
def test_labels_are_saved_on_the_source_grid(small_case, tmp_path, suffix):
    source_path = write_image(small_case.image, tmp_path / "ct.nii.gz")
    source = read_image(source_path)
    layer, labels = _labels_layer_for(source)
    written = save_layers(str(tmp_path / f"organs{suffix}"), [layer], plugin="medswin")
    assert written == [str(tmp_path / f"organs{suffix}")]
    back = read_image(written[0], kind="label")
    assert back.grid_difference(source, atol_mm=1e-5) is None
    np.testing.assert_array_equal(back.array, labels.array)
    if suffix == ".nii.gz":  # the input's own header (sform and qform with their codes) is reused
        out, original = nib.load(written[0]).header, nib.load(str(source_path)).header
        np.testing.assert_allclose(out.get_sform(), original.get_sform())
        assert int(out["sform_code"]) == int(original["sform_code"])
        assert out.get_data_dtype() == np.uint8


def test_failed_write_leaves_nothing(tmp_path, small_case):
    layer, _ = _labels_layer_for(small_case.image)
    data, state, _ = layer.as_layer_data_tuple()
    with pytest.raises(ImageWriteError):
        write_labels_file(str(tmp_path / "organs.vtk"), data, state)
    assert list(tmp_path.iterdir()) == []


def test_dicom_seg_references_the_series_it_was_made_on(tmp_path):
    series = write_series(tmp_path / "study", ct_image(orientation="oblique", seed=3))
    ((data, kwargs, _),) = napari_get_reader(str(series.folder))(str(series.folder))
    source = layer_to_image(data, kwargs)
    layer, labels = _labels_layer_for(source, seed=3)
    out = tmp_path / "seg.dcm"
    assert save_layers(str(out), [layer], plugin="medswin") == [str(out)]
    seg = hd.seg.segread(out)
    assert seg.SeriesInstanceUID != series.series_uid
    referenced = {
        item.ReferencedSOPInstanceUID for item in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence
    }
    assert referenced <= set(series.sop_instance_uids)
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == series.series_uid
    present = sorted(int(v) for v in np.unique(labels.array) if v)
    assert [s.SegmentLabel for s in seg.SegmentSequence] == [NAMES[v] for v in present]
    # every labelled voxel becomes exactly one set pixel of its segment's frames
    frames = seg.pixel_array.reshape(-1, *seg.pixel_array.shape[-2:])
    per_segment: dict[int, int] = {}
    for frame, group in zip(frames, seg.PerFrameFunctionalGroupsSequence, strict=True):
        number = int(group.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        per_segment[number] = per_segment.get(number, 0) + int(frame.sum())
    assert [per_segment.get(n, 0) for n in range(1, len(present) + 1)] == [
        int(np.count_nonzero(labels.array == v)) for v in present
    ]
    assert seg.SeriesDescription == "medswin segmentation (edited or drawn in napari)"  # no model

    # a model's result says which model made it and what it is for, as medswin predict's SEG does
    layer.metadata["medswin"].update(
        {"model": "demo", "intended_use": "demonstration of medswin only: never"}
    )
    assert save_layers(str(out), [layer], plugin="medswin") == [str(out)]
    seg = hd.seg.segread(out)
    assert seg.SeriesDescription == "medswin demo: demonstration of medswin only"
    assert seg.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0].AlgorithmName == "demo"


def test_dicom_outputs_need_a_dicom_source(tmp_path, small_case):
    layer, _ = _labels_layer_for(read_image(write_image(small_case.image, tmp_path / "ct.nii.gz")))
    data, state, _ = layer.as_layer_data_tuple()
    # the one message medswin predict and listen give too
    message = r"ct.nii.gz is a nifti image, not a DICOM series; DICOM-SEG and RTSTRUCT can only be written"
    with pytest.raises(ImageWriteError, match=message):
        write_labels_dicom_seg(str(tmp_path / "seg.dcm"), data, state)
    with pytest.raises(ImageWriteError, match=message):
        write_rtstruct(str(tmp_path / "plan.rtstruct.dcm"), data, state)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ct.nii.gz"]


def test_rtstruct_and_meshes_from_the_save_dialog(tmp_path, viewer):
    series = write_series(tmp_path / "study", ct_image(orientation="oblique", seed=3))
    ((data, kwargs, _),) = napari_get_reader(str(series.folder))(str(series.folder))
    source = layer_to_image(data, kwargs)
    layer, labels = _labels_layer_for(source, seed=3)
    present = sorted(int(v) for v in np.unique(labels.array) if v)

    # napari picks the writer by the longest matching ending: .rtstruct.dcm is the RTSTRUCT, .dcm the SEG
    viewer.add_layer(layer)  # File > Save Selected Layers: what the dialog calls with the chosen name
    viewer.layers.selection = {layer}
    out = tmp_path / "plan.rtstruct.dcm"
    assert viewer.layers.save(str(out), selected=True, plugin="medswin") == [str(out)]
    assert dciodvfy_errors(out) == []
    rt = pydicom.dcmread(out)
    assert rt.Modality == "RTSTRUCT" and rt.StudyInstanceUID == series.study_uid
    masks = rasterise(rt, source, source.meta["source_sop_instance_uids"])
    for value in present:
        assert dice(masks[NAMES[value]], np.asarray(labels.array[0]) == value) >= 0.95

    written = viewer.layers.save(str(tmp_path / "organs.stl"), selected=True, plugin="medswin")
    assert written == [str(tmp_path / f"organs_mesh_{NAMES[v]}.stl") for v in present]
    liver = np.argwhere(np.asarray(labels.array[0]) == 1)
    centroid = (source.lps_affine @ np.c_[liver, np.ones(len(liver))].T)[:3].T.mean(axis=0)
    mesh = trimesh.load(written[0])
    assert mesh.is_watertight and np.linalg.norm(mesh.center_mass - centroid) < 0.5
