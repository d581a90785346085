"""NIfTI / NRRD / MetaImage / PNG reading and atomic writing: round trips keep voxels and geometry."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from nibabel.testing import data_path
from PIL import Image as PILImage
from pydicom.data import get_testdata_file

from medswin.data.phantom import make_ct_phantom
from medswin.errors import ImageReadError, ImageWriteError
from medswin.io import Image, read_image, write_image, write_labels
from medswin.io import writers as writers_module

NIBABEL_FILES = [
    "anatomical.nii",
    "example4d.nii.gz",
    "example_nifti2.nii.gz",
    "functional.nii",
    "standard.nii.gz",
]
SUFFIXES = [".nii.gz", ".nii", ".mha", ".nrrd", ".mhd"]


def _assert_same(a: Image, b: Image, atol_mm: float = 1e-5) -> None:
    assert a.grid_difference(b, atol_mm=atol_mm) is None
    np.testing.assert_array_equal(a.array, b.array)


@pytest.mark.parametrize("name", NIBABEL_FILES)
def test_nibabel_example_files_read_with_their_affine_and_round_trip(name, tmp_path):
    path = Path(data_path) / name
    nifti = nib.load(path)
    image = read_image(path)
    data = np.asanyarray(nifti.dataobj)
    expected = np.moveaxis(data, -1, 0) if data.ndim == 4 else data[None]
    np.testing.assert_allclose(image.array, expected, rtol=1e-6)  # functional.nii is scaled: float32 here
    np.testing.assert_allclose(image.affine, nifti.affine, atol=1e-6)  # sform (code > 0) else qform
    for suffix in SUFFIXES:
        out = write_image(image, tmp_path / f"copy{suffix}")
        _assert_same(read_image(out), image)


def test_qform_is_used_when_the_sform_code_is_zero(tmp_path):
    affine_q = np.diag([-2.0, 3.0, 4.0, 1.0])
    affine_q[:3, 3] = [10, -20, 30]
    nifti = nib.Nifti1Image(np.zeros((3, 4, 5), np.int16), None)
    nifti.set_qform(affine_q, code=1)
    nifti.set_sform(np.diag([9.0, 9.0, 9.0, 1.0]), code=0)
    nib.save(nifti, tmp_path / "q.nii.gz")
    image = read_image(tmp_path / "q.nii.gz")
    np.testing.assert_allclose(image.affine, affine_q, atol=1e-6)
    assert image.meta["nifti"]["affine_source"] == "qform"


def test_nifti_geometry_matches_simpleitk(phantom, tmp_path):
    write_image(phantom.image, tmp_path / "ct.nii.gz")
    ours = read_image(tmp_path / "ct.nii.gz")
    theirs = Image.from_sitk(sitk.ReadImage(str(tmp_path / "ct.nii.gz")))
    _assert_same(ours, theirs)
    _assert_same(ours, phantom.image)


def test_scl_slope_and_inter_are_applied_as_float(tmp_path):
    raw = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    nifti = nib.Nifti1Image(raw, np.eye(4))
    nifti.header.set_slope_inter(0.5, -10.0)
    nib.save(nifti, tmp_path / "scaled.nii")
    image = read_image(tmp_path / "scaled.nii")
    assert image.array.dtype == np.float32
    np.testing.assert_allclose(image.array[0], raw * 0.5 - 10.0)
    unscaled = nib.Nifti1Image(raw, np.eye(4))
    nib.save(unscaled, tmp_path / "plain.nii")
    assert read_image(tmp_path / "plain.nii", kind="label").array.dtype == np.int16


def test_float_label_files_become_integers_and_fractions_are_refused(tmp_path):
    values = np.zeros((4, 4, 4), np.float32)
    values[1:3, 1:3, 1:3] = 3.0
    nib.save(nib.Nifti1Image(values, np.eye(4)), tmp_path / "seg.nii.gz")
    labels = read_image(tmp_path / "seg.nii.gz", kind="label")
    assert labels.array.dtype == np.uint8 and labels.kind == "label"
    values[0, 0, 0] = 0.5
    nib.save(nib.Nifti1Image(values, np.eye(4)), tmp_path / "prob.nii.gz")
    with pytest.raises(
        ImageReadError, match=r"prob\.nii\.gz: label image holds non-integer values \(e\.g\. 0\.5\)"
    ):
        read_image(tmp_path / "prob.nii.gz", kind="label")


def test_truncated_and_empty_and_missing_files_are_reported(tmp_path):
    case = make_ct_phantom((16, 16, 8), (1, 1, 2), "LPS")
    full = write_image(case.image, tmp_path / "ct.nii.gz").read_bytes()
    (tmp_path / "cut.nii.gz").write_bytes(full[: len(full) // 2])
    with pytest.raises(ImageReadError, match=r"cut\.nii\.gz: the NIfTI file is truncated or corrupt"):
        read_image(tmp_path / "cut.nii.gz")
    raw = gzip.decompress(full)
    (tmp_path / "cut.nii").write_bytes(raw[: len(raw) - 100])
    with pytest.raises(ImageReadError, match=r"cut\.nii: the NIfTI file is truncated"):
        read_image(tmp_path / "cut.nii")
    (tmp_path / "empty.nii.gz").write_bytes(b"")
    with pytest.raises(ImageReadError, match=r"empty\.nii\.gz: the file is empty"):
        read_image(tmp_path / "empty.nii.gz")
    with pytest.raises(ImageReadError, match=r"nowhere\.nii\.gz: no such file or folder"):
        read_image(tmp_path / "nowhere.nii.gz")
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(ImageReadError, match=r"notes\.txt: unrecognised file format"):
        read_image(tmp_path / "notes.txt")
    (tmp_path / "bad.mha").write_text("ObjectType = Image\nNDims = 3\nDimSize = 4 4 4\n")
    with pytest.raises(ImageReadError, match=r"bad\.mha: SimpleITK cannot read"):
        read_image(tmp_path / "bad.mha")


def test_vector_mha_becomes_channels(tmp_path):
    array = np.random.default_rng(0).normal(size=(3, 5, 6, 7)).astype(np.float32)
    image = Image(array, (0.5, 0.6, 0.7), (1.0, 2.0, 3.0), np.diag([1.0, -1.0, -1.0]))
    write_image(image, tmp_path / "vec.mha")
    assert sitk.ReadImage(str(tmp_path / "vec.mha")).GetNumberOfComponentsPerPixel() == 3
    _assert_same(read_image(tmp_path / "vec.mha"), image)
    _assert_same(read_image(write_image(image, tmp_path / "vec.nii.gz")), image)


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_phantom_round_trip_every_format(phantom, suffix, tmp_path):
    _assert_same(read_image(write_image(phantom.image, tmp_path / f"ct{suffix}")), phantom.image)
    back = read_image(write_labels(phantom.labels, tmp_path / f"seg{suffix}"), kind="label")
    _assert_same(back, phantom.labels)
    assert back.array.dtype == np.uint8


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "rtdose.dcm"])
def test_shipped_dicom_round_trips_through_nifti_and_mha(name, tmp_path):
    image = read_image(get_testdata_file(name))
    for suffix in (".nii.gz", ".mha"):
        _assert_same(read_image(write_image(image, tmp_path / f"x{suffix}")), image)


def test_dicom_series_round_trip(ct_series, tmp_path):
    image = read_image(ct_series.folder)
    for suffix in (".nii.gz", ".nrrd"):
        _assert_same(read_image(write_image(image, tmp_path / f"series{suffix}")), image)


def test_labels_widen_to_uint16_only_when_needed(tmp_path):
    grid = make_ct_phantom((8, 8, 4), (1, 1, 1), "RAS").labels
    many = grid.with_array(np.where(grid.array > 0, 300, 0).astype(np.int64))
    write_labels(many, tmp_path / "many.nii.gz")
    assert nib.load(tmp_path / "many.nii.gz").get_data_dtype() == np.uint16
    write_labels(grid.array.astype(np.int64), tmp_path / "few.nii.gz", reference=grid)
    assert nib.load(tmp_path / "few.nii.gz").get_data_dtype() == np.uint8
    assert nib.load(tmp_path / "few.nii.gz").header.get_intent()[0] == "label"


def test_reference_header_is_reused_exactly(tmp_path):
    # a BraTS-like header: qform only, LPS-flipped, checked bit-exactly by challenge validators
    qform = np.array([[-1.0, 0, 0, 0], [0, -1.0, 0, 239], [0, 0, 1.0, 0], [0, 0, 0, 1]])
    nifti = nib.Nifti1Image(np.zeros((16, 12, 8), np.float32), None)
    nifti.set_qform(qform, code=1)
    nifti.set_sform(qform, code=0)
    nib.save(nifti, tmp_path / "t1.nii.gz")
    source = read_image(tmp_path / "t1.nii.gz")
    prediction = source.with_array(np.ones((1, 16, 12, 8), np.uint8), kind="label")
    prediction.meta.clear()
    write_labels(prediction, tmp_path / "seg.nii.gz", reference=source)
    header = nib.load(tmp_path / "seg.nii.gz").header
    assert int(header["qform_code"]) == 1 and int(header["sform_code"]) == 0
    np.testing.assert_array_equal(header.get_qform(), qform)


def test_reference_on_another_grid_is_refused_and_nothing_written(phantom, tmp_path):
    shifted = Image(
        phantom.labels.array, phantom.labels.spacing, (0.0, 0.0, 0.0), phantom.labels.direction, "label"
    )
    with pytest.raises(ImageWriteError, match="not on the reference grid.*origin"):
        write_labels(shifted, tmp_path / "seg.nii.gz", reference=phantom.image)
    assert os.listdir(tmp_path) == []


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(phantom, tmp_path, monkeypatch):
    target = write_image(phantom.image, tmp_path / "ct.nii.gz")
    before = target.read_bytes()

    def broken(image, array, path, source):
        path.write_bytes(b"half")
        raise RuntimeError("disk full")

    monkeypatch.setitem(writers_module._WRITERS, ".nii.gz", broken)
    with pytest.raises(ImageWriteError, match=r"ct\.nii\.gz: could not write the image \(disk full\)"):
        write_image(phantom.image, target)
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["ct.nii.gz"]

    monkeypatch.setitem(writers_module._WRITERS, ".nii.gz", lambda image, array, path, source: path.touch())
    with pytest.raises(ImageWriteError, match="empty file"):
        write_image(phantom.image, tmp_path / "new.nii.gz")
    assert sorted(os.listdir(tmp_path)) == ["ct.nii.gz"]


def test_write_refuses_bad_targets(phantom, tmp_path):
    with pytest.raises(ImageWriteError, match=r"unsupported output extension \.png"):
        write_image(phantom.image, tmp_path / "ct.png")
    with pytest.raises(ImageWriteError, match="do not fit uint8"):
        write_image(phantom.image, tmp_path / "ct.nii.gz", dtype=np.uint8)
    assert os.listdir(tmp_path) == []
    (tmp_path / "out.nii.gz").mkdir()
    with pytest.raises(ImageWriteError, match=r"out\.nii\.gz: is a folder"):
        write_image(phantom.image, tmp_path / "out.nii.gz")


def test_png_reads_as_2d_image_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 255, size=(20, 30), dtype=np.uint8)  # rows, columns
    PILImage.fromarray(gray).save(tmp_path / "xray.png")
    image = read_image(tmp_path / "xray.png", spacing=(0.2, 0.3))
    assert image.spatial_dims == 2 and image.shape == (30, 20) and image.spacing == (0.2, 0.3)
    np.testing.assert_array_equal(image.array[0], gray.T)
    for suffix in (".mha", ".nrrd", ".nii.gz"):
        _assert_same(read_image(write_image(image, tmp_path / f"xray{suffix}")), image)

    rgb = rng.integers(0, 255, size=(20, 30, 3), dtype=np.uint8)
    PILImage.fromarray(rgb).save(tmp_path / "skin.tiff")
    colour = read_image(tmp_path / "skin.tiff")
    assert colour.num_channels == 3 and colour.spacing == (1.0, 1.0)
    np.testing.assert_array_equal(colour.array, np.transpose(rgb, (2, 1, 0)))
    _assert_same(read_image(write_image(colour, tmp_path / "skin.mha")), colour)


def test_sheared_sform_falls_back_to_a_valid_qform_or_is_refused(tmp_path):
    sheared = np.array([[1.0, 0.4, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1]])
    qform = np.diag([-1.5, 1.5, 3.0, 1.0])
    nifti = nib.Nifti1Image(np.zeros((4, 4, 4), np.int16), None)
    nifti.set_sform(sheared, code=2)
    nifti.set_qform(qform, code=1)
    nib.save(nifti, tmp_path / "fallback.nii.gz")
    np.testing.assert_allclose(read_image(tmp_path / "fallback.nii.gz").affine, qform, atol=1e-6)
    nifti.set_qform(qform, code=0)
    nib.save(nifti, tmp_path / "sheared.nii.gz")
    with pytest.raises(ImageReadError, match=r"sheared\.nii\.gz: invalid NIfTI geometry.*sheared"):
        read_image(tmp_path / "sheared.nii.gz")


def test_non_dicom_files_list_no_series_and_bare_label_arrays_need_a_reference(phantom, tmp_path):
    from medswin.io import list_series

    path = write_image(phantom.image, tmp_path / "ct.nii.gz")
    assert list_series(path) == []
    with pytest.raises(ImageWriteError, match="needs a reference image"):
        write_labels(phantom.labels.array, tmp_path / "seg.nii.gz")
    with pytest.raises(ImageWriteError, match="does not match|differs from the grid"):
        write_labels(np.zeros((3, 3, 3), np.uint8), tmp_path / "seg.nii.gz", reference=phantom.image)
    assert sorted(os.listdir(tmp_path)) == ["ct.nii.gz"]
