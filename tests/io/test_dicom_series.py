"""DICOM reading: geometry equal to SimpleITK's series reader, series choice, multi-frame, 2D, and errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from dicom_factory import (
    ct_image,
    write_enhanced,
    write_radiograph,
    write_report,
    write_series,
    zip_folder,
)
from pydicom.data import get_testdata_file

from medswin.errors import ImageReadError
from medswin.io import Image, list_series, read_image


def _sitk_series(folder: Path, uid: str | None = None) -> Image:
    reader = sitk.ImageSeriesReader()
    files = reader.GetGDCMSeriesFileNames(str(folder), uid or "")
    reader.SetFileNames(files)
    return Image.from_sitk(reader.Execute())


def test_series_geometry_and_voxels_match_simpleitk(ct_series):
    image = read_image(ct_series.folder)
    reference = _sitk_series(ct_series.folder)
    assert image.grid_difference(reference, atol_mm=1e-5) is None
    np.testing.assert_array_equal(image.array, reference.array)
    # and what the factory wrote: HU after RescaleSlope/Intercept, slice step from the positions
    assert image.grid_difference(ct_series.expected, atol_mm=1e-6) is None
    np.testing.assert_array_equal(image.array, ct_series.expected.array)
    assert image.spacing[2] == pytest.approx(2.5, abs=1e-6)  # SliceThickness says 3.0: not used


def test_series_metadata_keeps_identifiers_and_source_files_in_slice_order(ct_series):
    image = read_image(ct_series.folder)
    dicom = image.meta["dicom"]
    assert dicom["SeriesInstanceUID"] == ct_series.series_uid
    assert dicom["StudyInstanceUID"] == ct_series.study_uid
    assert dicom["FrameOfReferenceUID"] == ct_series.frame_of_reference_uid
    assert dicom["Modality"] == "CT" and image.meta["modality"] == "CT"
    assert dicom["SeriesNumber"] == 1 and dicom["SeriesDescription"] == "AXIAL 2.5mm"
    assert "PatientName" not in dicom and "PatientID" not in dicom
    assert image.meta["source_files"] == [str(p) for p in ct_series.files]
    assert image.meta["source_sop_instance_uids"] == ct_series.sop_instance_uids


def test_instance_numbers_do_not_decide_slice_order(tmp_path):
    written = write_series(tmp_path / "ct", ct_image(orientation="oblique"), reverse_instance_numbers=True)
    image = read_image(tmp_path / "ct")
    np.testing.assert_array_equal(image.array, written.expected.array)
    assert image.grid_difference(written.expected, atol_mm=1e-6) is None


def test_non_integer_rescale_gives_float_values(tmp_path):
    written = write_series(tmp_path / "ct", ct_image(), rescale=(0.5, -1000.0))
    image = read_image(tmp_path / "ct")
    assert image.array.dtype == np.float32
    np.testing.assert_allclose(image.array, written.expected.array, atol=1e-3)


def test_mr_series_without_rescale_keeps_unsigned_values(tmp_path):
    volume = ct_image().with_array(np.abs(ct_image().array))
    written = write_series(tmp_path / "mr", volume, modality="MR")
    image = read_image(tmp_path / "mr")
    assert image.array.dtype == np.uint16 and image.meta["modality"] == "MR"
    np.testing.assert_array_equal(image.array, written.expected.array)


def _two_series(folder: Path):
    big = write_series(folder, ct_image(orientation="oblique"), series_number=2)
    small = write_series(
        folder / "sub",
        ct_image(shape=(12, 10, 6), orientation="RAS"),
        series_number=7,
        modality="MR",
        series_description="T1 AX",
        study_uid=big.study_uid,
    )
    write_report(folder / "report.dcm", big.study_uid)
    (folder / "README.txt").write_text("exported by a PACS")
    return big, small


def test_folder_with_several_series_reads_the_largest_or_the_one_asked_for(tmp_path):
    big, small = _two_series(tmp_path / "study")
    assert read_image(tmp_path / "study").meta["dicom"]["SeriesInstanceUID"] == big.series_uid
    chosen = read_image(tmp_path / "study", series_uid=small.series_uid)
    assert chosen.grid_difference(small.expected, atol_mm=1e-6) is None
    np.testing.assert_array_equal(chosen.array, small.expected.array)
    series = list_series(tmp_path / "study")
    assert [s.uid for s in series] == [big.series_uid, small.series_uid]
    assert (series[0].modality, series[0].num_frames, series[0].shape, series[0].number) == (
        "CT",
        10,
        (24, 20, 10),
        2,
    )
    assert (series[1].description, series[1].shape) == ("T1 AX", (12, 10, 6))
    with pytest.raises(ImageReadError, match=r"no series with SeriesInstanceUID 1\.2\.3.*found"):
        read_image(tmp_path / "study", series_uid="1.2.3")


def test_zip_of_a_study_reads_like_the_folder(tmp_path):
    big, small = _two_series(tmp_path / "study")
    archive = zip_folder(tmp_path / "study", tmp_path / "study.zip")
    image = read_image(archive, series_uid=small.series_uid)
    np.testing.assert_array_equal(image.array, small.expected.array)
    assert image.grid_difference(small.expected, atol_mm=1e-6) is None
    assert image.meta["source_archive"] == str(archive)
    assert image.meta["source_files"][0].startswith("export/sub/")
    assert [s.uid for s in list_series(archive)] == [big.series_uid, small.series_uid]


def test_enhanced_multiframe_matches_the_single_frame_series(tmp_path, oblique_series):
    path = write_enhanced(tmp_path / "enhanced" / "ct.dcm", oblique_series)
    image = read_image(path)
    assert image.grid_difference(oblique_series.expected, atol_mm=1e-6) is None
    np.testing.assert_array_equal(image.array, oblique_series.expected.array)
    assert sorted(image.meta["source_frame_numbers"]) == list(range(1, 11))
    assert read_image(tmp_path / "enhanced").same_grid(image)


def test_classic_multiframe_rt_dose_matches_simpleitk():
    path = get_testdata_file("rtdose.dcm")
    image = read_image(path)
    reference = Image.from_sitk(sitk.ReadImage(path))
    assert image.shape == (10, 10, 15)
    assert image.grid_difference(reference, atol_mm=1e-5) is None
    np.testing.assert_array_equal(image.array, reference.array)


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm"])
def test_shipped_single_slices_match_simpleitk_in_plane(name):
    path = get_testdata_file(name)
    image = read_image(path)
    reference = Image.from_sitk(sitk.ReadImage(path))
    np.testing.assert_array_equal(image.array, reference.array)
    np.testing.assert_allclose(image.origin, reference.origin, atol=1e-5)
    np.testing.assert_allclose(image.spacing[:2], reference.spacing[:2], atol=1e-6)
    np.testing.assert_allclose(image.direction, reference.direction, atol=1e-6)


def test_compressed_pixel_data_decodes_to_the_same_values():
    plain = read_image(get_testdata_file("MR_small.dcm"))
    for name in ("MR_small_jp2klossless.dcm", "MR_small_RLE.dcm", "MR_small_bigendian.dcm"):
        other = read_image(get_testdata_file(name))
        np.testing.assert_array_equal(other.array, plain.array)
        assert other.same_grid(plain)


@pytest.mark.parametrize("attribute", ["ImagerPixelSpacing", "PixelSpacing"])
def test_radiograph_is_a_2d_image_with_detector_spacing(tmp_path, attribute):
    path, pixels = write_radiograph(
        tmp_path / "cxr.dcm", shape=(40, 32), pixel_spacing=(0.15, 0.14), spacing_attribute=attribute
    )
    image = read_image(path)
    assert image.spatial_dims == 2 and image.shape == (40, 32)
    assert image.spacing == pytest.approx((0.15, 0.14))
    np.testing.assert_array_equal(image.array[0], pixels)
    assert list_series(path)[0].shape == (40, 32)


def test_monochrome1_radiograph_is_inverted_so_bright_means_dense(tmp_path):
    path, pixels = write_radiograph(tmp_path / "cr.dcm", photometric="MONOCHROME1")
    image = read_image(path)
    np.testing.assert_array_equal(
        image.array[0], pixels.max() + pixels.min() - pixels.astype(image.array.dtype)
    )
    assert image.meta["inverted_monochrome1"] is True


# ------------------------------------------------------------------- errors
def test_folder_without_dicom_names_the_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ImageReadError, match=rf"{tmp_path}: no DICOM files found \(1 other files\)"):
        read_image(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ImageReadError, match="folder is empty"):
        read_image(empty)


def test_folder_with_only_reports_says_there_is_no_image(tmp_path):
    write_report(tmp_path / "sr.dcm")
    shutil.copy(get_testdata_file("test-SR.dcm"), tmp_path / "sr2.dcm")
    with pytest.raises(ImageReadError, match=r"no images \(.*SR Storage.*\)"):
        read_image(tmp_path)
    with pytest.raises(ImageReadError, match="holds no image"):
        read_image(tmp_path / "sr.dcm")


def test_missing_slice_is_refused_unless_gaps_are_allowed(tmp_path, oblique_series):
    oblique_series.files[4].unlink()
    with pytest.raises(ImageReadError, match=r"1 missing slice\(s\): a step of 5\.00 mm.*allow_gaps"):
        read_image(oblique_series.folder)
    image = read_image(oblique_series.folder, allow_gaps=True)
    assert image.grid_difference(oblique_series.expected, atol_mm=1e-5) is None
    expected = oblique_series.expected.array.astype(np.float32)
    kept = [0, 1, 2, 3, 5, 6, 7, 8, 9]
    np.testing.assert_allclose(image.array[..., kept], expected[..., kept], atol=1e-3)
    np.testing.assert_allclose(image.array[..., 4], (expected[..., 3] + expected[..., 5]) / 2, atol=1e-3)
    assert image.meta["dicom"]["interpolated_onto_regular_grid"] is True


def test_duplicate_positions_are_refused(tmp_path, oblique_series):
    ds = pydicom.dcmread(oblique_series.files[3])
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(oblique_series.folder / "echo2.dcm")
    with pytest.raises(ImageReadError, match="share a position.*two acquisitions"):
        read_image(oblique_series.folder)


def test_mixed_orientations_in_one_series_are_refused(oblique_series):
    ds = pydicom.dcmread(oblique_series.files[0])
    ds.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]  # a sagittal localiser in the axial series
    ds.save_as(oblique_series.files[0])
    with pytest.raises(ImageReadError, match=rf"{oblique_series.folder}.*ImageOrientationPatient differs"):
        read_image(oblique_series.folder)


def test_sheared_stack_is_refused(tmp_path):
    written = write_series(tmp_path / "ct", ct_image(), random_names=False)
    for k, path in enumerate(written.files):  # each slice shifted 1 mm more along y: gantry tilt
        ds = pydicom.dcmread(path)
        position = [float(v) for v in ds.ImagePositionPatient]
        ds.ImagePositionPatient = [position[0], position[1] + k * 1.0, position[2]]
        ds.save_as(path)
    with pytest.raises(ImageReadError, match="gantry tilt"):
        read_image(tmp_path / "ct")


def test_truncated_dicom_file_is_reported(tmp_path, oblique_series):
    data = oblique_series.files[0].read_bytes()
    oblique_series.files[0].write_bytes(data[: len(data) - 300])
    with pytest.raises(ImageReadError, match=str(oblique_series.files[0].name)):
        read_image(oblique_series.folder)


def test_enhanced_mr_multiframe_matches_its_series(tmp_path):
    volume = ct_image(orientation="RAS")
    written = write_series(tmp_path / "mr", volume.with_array(np.abs(volume.array)), modality="MR")
    image = read_image(write_enhanced(tmp_path / "enhanced" / "mr.dcm", written))
    assert image.grid_difference(written.expected, atol_mm=1e-6) is None
    np.testing.assert_array_equal(image.array, written.expected.array)


def test_frames_of_different_sizes_are_refused(oblique_series):
    ds = pydicom.dcmread(oblique_series.files[1])
    ds.Rows = 10
    ds.save_as(oblique_series.files[1])
    with pytest.raises(
        ImageReadError,
        match=r"frames of different sizes in one series \(9 frames of 20×24, 1 frames of 10×24\)",
    ):
        read_image(oblique_series.folder)
