"""DICOM-SEG: frames equal the labels slice by slice and reference the source SOP instances."""

from __future__ import annotations

import os

import highdicom as hd
import numpy as np
import pytest
from dicom_factory import write_enhanced, zip_folder

from medswin.data.phantom import PHANTOM_LABELS, make_ct_phantom
from medswin.errors import ImageWriteError
from medswin.io import read_image, reorient, write_image
from medswin.io.dicom_seg import write_dicom_seg

NAMES = {value: name for value, (name, _) in PHANTOM_LABELS.items()}


def _labels_for(source, seed=5):
    """Phantom organ labels on the grid of ``source`` (shapes match the factory's 24×20×10 CT)."""
    case = make_ct_phantom(source.shape, source.spacing, "LPS", seed=seed)
    return source.with_array(case.labels.array, kind="label")


def _frames_by_reference(seg):
    """{(referenced SOP instance uid, referenced frame or None, segment number): frame pixels}."""
    frames = {}
    for index, group in enumerate(seg.PerFrameFunctionalGroupsSequence):
        reference = group.DerivationImageSequence[0].SourceImageSequence[0]
        frame = int(reference.ReferencedFrameNumber) if "ReferencedFrameNumber" in reference else None
        number = int(group.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        frames[(str(reference.ReferencedSOPInstanceUID), frame, number)] = seg.pixel_array[index]
    return frames


def _check(seg, labels, uids, frame_numbers=None):
    frames = _frames_by_reference(seg)
    numbers = {value: n for n, value in enumerate(sorted(NAMES), start=1)}
    found = 0
    for k in range(labels.shape[2]):
        uid = uids[0] if frame_numbers else uids[k]
        frame = frame_numbers[k] if frame_numbers else None
        for value, number in numbers.items():
            expected = value == labels.array[0, :, :, k].T
            stored = frames.get((uid, frame, number))
            if stored is None:
                assert not expected.any(), f"slice {k} segment {number} missing"
                continue
            np.testing.assert_array_equal(stored.astype(bool), expected)
            found += 1
    assert found > 0


def test_seg_frames_match_labels_and_reference_the_series(ct_series, tmp_path):
    source = read_image(ct_series.folder)
    labels = _labels_for(source)
    colors = {1: (200, 80, 60), 2: (120, 60, 200)}
    path = write_dicom_seg(labels, source, tmp_path / "seg.dcm", NAMES, colors, algorithm_name="medswin-test")
    seg = hd.seg.segread(path)
    assert seg.SegmentationType == "BINARY"
    assert seg.StudyInstanceUID == ct_series.study_uid
    assert seg.FrameOfReferenceUID == ct_series.frame_of_reference_uid
    assert seg.PatientID == "MEDSWIN-TEST-0001"
    referenced = {
        str(item.ReferencedSOPInstanceUID)
        for series in seg.ReferencedSeriesSequence
        for item in series.ReferencedInstanceSequence
    }
    assert referenced == set(ct_series.sop_instance_uids)
    assert [s.SegmentLabel for s in seg.SegmentSequence] == [NAMES[v] for v in sorted(NAMES)]
    first = seg.SegmentSequence[0]
    assert first.SegmentAlgorithmType == "AUTOMATIC"
    assert first.SegmentationAlgorithmIdentificationSequence[0].AlgorithmName == "medswin-test"
    assert first.SegmentedPropertyCategoryCodeSequence[0].CodeMeaning == "Tissue"
    assert first.SegmentedPropertyTypeCodeSequence[0].CodeMeaning == "Organ"
    assert "RecommendedDisplayCIELabValue" in first
    _check(seg, labels, ct_series.sop_instance_uids)


def test_labels_on_another_grid_are_aligned_onto_the_source_frames(oblique_series, tmp_path):
    source = read_image(oblique_series.folder)
    labels = _labels_for(source)
    turned = reorient(labels, "RAS")  # e.g. a prediction made in RAS and written back
    path = write_dicom_seg(turned, source, tmp_path / "seg.dcm", NAMES)
    _check(hd.seg.segread(path), labels, oblique_series.sop_instance_uids)


def test_seg_from_a_zipped_series(oblique_series, tmp_path):
    archive = zip_folder(oblique_series.folder, tmp_path / "ct.zip")
    source = read_image(archive)
    labels = _labels_for(source)
    path = write_dicom_seg(labels, source, tmp_path / "seg.dcm", NAMES)
    _check(hd.seg.segread(path), labels, oblique_series.sop_instance_uids)


def test_seg_from_an_enhanced_multiframe_source(oblique_series, tmp_path):
    source = read_image(write_enhanced(tmp_path / "enhanced" / "ct.dcm", oblique_series))
    labels = _labels_for(source)
    path = write_dicom_seg(labels, source, tmp_path / "seg.dcm", NAMES)
    uid = str(source.meta["source_sop_instance_uids"][0])
    _check(hd.seg.segread(path), labels, [uid], source.meta["source_frame_numbers"])


def test_seg_refusals_write_nothing(oblique_series, tmp_path):
    source = read_image(oblique_series.folder)
    labels = _labels_for(source)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ImageWriteError, match=r"label value\(s\) \[5\] have no name"):
        write_dicom_seg(labels, source, out / "seg.dcm", {k: v for k, v in NAMES.items() if k != 5})
    nifti_source = read_image(write_image(source, tmp_path / "ct.nii.gz"))
    with pytest.raises(ImageWriteError, match="needs the image read from a DICOM series"):
        write_dicom_seg(labels, nifti_source, out / "seg.dcm", NAMES)
    oblique_series.files[2].unlink()
    with pytest.raises(ImageWriteError, match="cannot re-read the source DICOM files"):
        write_dicom_seg(labels, source, out / "seg.dcm", NAMES)
    assert os.listdir(out) == []
