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
    assert "RecommendedDisplayCIELabValue" in first
    _check(seg, labels, ct_series.sop_instance_uids)


def _coded(sequence):
    item = sequence[0]
    return (str(item.CodeValue), str(item.CodingSchemeDesignator))


def test_seg_segments_carry_snomed_codes_with_laterality_and_anatomy_colours(ct_series, tmp_path):
    """Each phantom organ gets its SNOMED CT type (the DICOM standard's code, via pydicom), sides as modifiers."""
    import pydicom
    from pydicom.sr.codedict import codes

    from medswin.io.anatomy import find_structure

    source = read_image(ct_series.folder)
    labels = _labels_for(source)
    path = write_dicom_seg(labels, source, tmp_path / "seg.dcm", NAMES, {1: (1, 2, 3)})
    seg = pydicom.dcmread(path)
    by_label = {str(s.SegmentLabel): s for s in seg.SegmentSequence}
    expected = {
        "liver": (codes.SCT.Liver, None),
        "spleen": (codes.SCT.Spleen, None),
        "kidney_right": (codes.SCT.Kidney, codes.SCT.Right),
        "kidney_left": (codes.SCT.Kidney, codes.SCT.Left),
        "vertebra": (codes.SCT.Vertebra, None),
    }
    assert set(by_label) == set(expected) == set(NAMES.values())
    for name, (kind, side) in expected.items():
        segment = by_label[name]
        assert _coded(segment.SegmentedPropertyCategoryCodeSequence) == (
            codes.SCT.AnatomicalStructure.value,
            "SCT",
        )
        type_item = segment.SegmentedPropertyTypeCodeSequence[0]
        assert (str(type_item.CodeValue), str(type_item.CodingSchemeDesignator)) == (kind.value, "SCT")
        if side is None:
            assert "SegmentedPropertyTypeModifierCodeSequence" not in type_item
        else:
            assert _coded(type_item.SegmentedPropertyTypeModifierCodeSequence) == (side.value, "SCT")
    # colours: the anatomy table's (it wins over the caller's for names it knows), kidneys distinct
    lab = {name: tuple(int(v) for v in s.RecommendedDisplayCIELabValue) for name, s in by_label.items()}
    assert lab["kidney_right"] != lab["kidney_left"]
    expected_liver = hd.color.CIELabColor.from_rgb(*find_structure("liver").color).value
    assert lab["liver"] == tuple(int(v) for v in expected_liver)
    # highdicom reads the codes back
    described = hd.seg.segread(path).get_segment_description(
        [s.SegmentNumber for s in seg.SegmentSequence if s.SegmentLabel == "liver"][0]
    )
    assert described.segmented_property_type == codes.SCT.Liver


def test_names_the_table_does_not_know_keep_tissue_organ(ct_series, tmp_path):
    source = read_image(ct_series.folder)
    labels = _labels_for(source)
    names = {value: f"structure {value}" for value in NAMES}
    seg = hd.seg.segread(write_dicom_seg(labels, source, tmp_path / "seg.dcm", names))
    first = seg.SegmentSequence[0]
    assert first.SegmentedPropertyCategoryCodeSequence[0].CodeMeaning == "Tissue"
    assert first.SegmentedPropertyTypeCodeSequence[0].CodeMeaning == "Organ"


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
    with pytest.raises(ImageWriteError, match=r"ct.nii.gz is a nifti image, not a DICOM series; DICOM-SEG"):
        write_dicom_seg(labels, nifti_source, out / "seg.dcm", NAMES)
    oblique_series.files[2].unlink()
    with pytest.raises(ImageWriteError, match="cannot re-read the source DICOM files"):
        write_dicom_seg(labels, source, out / "seg.dcm", NAMES)
    assert os.listdir(out) == []


def test_a_written_seg_reads_back_on_the_source_voxels(ct_series, tmp_path):
    from medswin.io.dicom_seg import is_dicom_seg, read_dicom_seg
    from medswin.io.geometry import resample_to_reference

    source = read_image(ct_series.folder)
    labels = _labels_for(source)
    path = write_dicom_seg(labels, source, tmp_path / "seg.dcm", NAMES)
    assert is_dicom_seg(path) and not is_dicom_seg(ct_series.files[0])
    seg, names = read_dicom_seg(path)
    assert names == {number: NAMES[value] for number, value in enumerate(sorted(NAMES), start=1)}
    assert seg.kind == "label" and seg.meta["format"] == "dicom-seg"
    # the SEG's frames are source slices: nearest-neighbour onto the source grid moves nothing
    on_source = resample_to_reference(seg, source, interpolation="nearest")
    numbers = {value: number for number, value in enumerate(sorted(NAMES), start=1)}
    expected = np.vectorize(lambda v: numbers.get(int(v), 0))(labels.array)
    np.testing.assert_array_equal(on_source.array, expected)
    np.testing.assert_allclose(seg.spacing[:2], source.spacing[:2])
