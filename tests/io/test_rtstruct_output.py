"""RTSTRUCT (``--output-format rtstruct``): valid per dciodvfy, contours re-rasterise onto the labels."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pydicom
import pytest
from dicom_factory import ct_image, write_series
from skimage.draw import polygon

from medswin.data.phantom import PHANTOM_LABELS, make_ct_phantom
from medswin.errors import ImageWriteError
from medswin.io import read_image, write_image
from medswin.io.anatomy import structure_colors
from medswin.io.deidentify import pseudonymous_uid
from medswin.io.outputs import WRITERS, LabelSet

NAMES = {value: name for value, (name, _) in PHANTOM_LABELS.items()}
KEY = b"0123456789abcdef0123456789abcdef"


def dciodvfy_errors(path) -> list[str]:
    """The ``Error`` lines dciodvfy (dicom3tools) reports for ``path``."""
    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy (dicom3tools) is not installed")
    done = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("Error")]


def rasterise(rt, source, uids) -> dict[str, np.ndarray]:
    """ROI name -> mask on ``source``'s grid, drawn from the contours (even-odd within a plane)."""
    to_index = np.linalg.inv(source.lps_affine)
    names = {int(r.ROINumber): str(r.ROIName) for r in rt.StructureSetROISequence}
    masks = {}
    for roi in rt.ROIContourSequence:
        mask = np.zeros(source.shape, dtype=bool)
        for contour in roi.get("ContourSequence", []):
            points = np.asarray(contour.ContourData, dtype=float).reshape(-1, 3)
            index = (to_index @ np.c_[points, np.ones(len(points))].T)[:3].T
            k = int(round(index[0, 2]))
            np.testing.assert_allclose(index[:, 2], k, atol=1e-3)  # on the plane of one slice...
            assert contour.ContourImageSequence[0].ReferencedSOPInstanceUID == uids[k]  # ...the one it names
            assert contour.ContourGeometricType == "CLOSED_PLANAR"
            rows, columns = polygon(index[:, 0], index[:, 1], source.shape[:2])
            mask[rows, columns, k] ^= True
        masks[names[int(roi.ReferencedROINumber)]] = mask
    return masks


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / float(a.sum() + b.sum())


def _labels_with_a_hole(source):
    """Phantom organs on ``source``'s grid, plus a ring (a label with a hole) in place of the spleen."""
    case = make_ct_phantom(source.shape, source.spacing, "LPS", seed=5)
    array = np.asarray(case.labels.array[0]).copy()
    array[array == 2] = 0
    array[4:20, 4:18, 3:9] = 2
    array[9:15, 8:14, 3:9] = 0
    return source.with_array(array[None], kind="label")


@pytest.fixture
def oblique_ct(tmp_path):
    """An oblique, anisotropic (0.9 x 0.8 x 2.5 mm) CT series, files in random order."""
    series = write_series(
        tmp_path / "ct", ct_image(shape=(40, 36, 14), spacing=(0.9, 0.8, 2.5), orientation="oblique", seed=2)
    )
    return series, read_image(series.folder)


def test_rtstruct_is_valid_and_its_contours_give_back_each_structure(oblique_ct, tmp_path):
    series, source = oblique_ct
    labels = _labels_with_a_hole(source)
    colors = {1: (10, 20, 30), 99: (1, 2, 3)}
    (path,) = WRITERS["rtstruct"].write(
        LabelSet(labels, source, NAMES, colors, algorithm="demo", series_description="medswin demo QC ok"),
        tmp_path / "out",
        "c1",
    )
    assert path.name == "c1.rtstruct.dcm"
    assert dciodvfy_errors(path) == []
    rt = pydicom.dcmread(path)
    assert rt.SOPClassUID == "1.2.840.10008.5.1.4.1.1.481.3" and rt.Modality == "RTSTRUCT"
    assert rt.PatientID == "MEDSWIN-TEST-0001" and rt.StudyInstanceUID == series.study_uid
    assert rt.SeriesInstanceUID != series.series_uid and rt.SeriesDescription == "medswin demo QC ok"
    frame = rt.ReferencedFrameOfReferenceSequence[0]
    assert frame.FrameOfReferenceUID == series.frame_of_reference_uid == rt.FrameOfReferenceUID
    referenced = frame.RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
    assert referenced.SeriesInstanceUID == series.series_uid
    assert [i.ReferencedSOPInstanceUID for i in referenced.ContourImageSequence] == list(
        source.meta["source_sop_instance_uids"]
    )
    assert [r.ROIName for r in rt.StructureSetROISequence] == [NAMES[v] for v in sorted(NAMES)]
    shown = structure_colors(NAMES, colors)  # the colours the DICOM-SEG and napari show
    assert [[int(c) for c in r.ROIDisplayColor] for r in rt.ROIContourSequence] == [
        list(shown[v]) for v in sorted(NAMES)
    ]

    masks = rasterise(rt, source, source.meta["source_sop_instance_uids"])
    array = np.asarray(labels.array[0])
    scores = {name: dice(masks[name], array == value) for value, name in NAMES.items()}
    print("RTSTRUCT Dice per structure:", {n: round(v, 4) for n, v in scores.items()})
    assert min(scores.values()) >= 0.95, scores
    ring = masks[NAMES[2]]
    assert not ring[9:15, 8:14, 3:9].any() and ring[4:9, 4:18, 3:9].all()  # the hole stays a hole


def test_rtstruct_deidentified_keeps_its_references(oblique_ct, tmp_path):
    series, source = oblique_ct
    labels = _labels_with_a_hole(source)
    (path,) = WRITERS["rtstruct"].write(LabelSet(labels, source, NAMES, deidentify_key=KEY), tmp_path, "c1")
    assert dciodvfy_errors(path) == []
    rt = pydicom.dcmread(path)
    assert rt.PatientIdentityRemoved == "YES" and rt.PatientID.startswith("ANON-")
    assert "Phantom" not in str(rt.PatientName) and rt.PatientBirthDate == ""
    frame = rt.ReferencedFrameOfReferenceSequence[0]
    assert frame.FrameOfReferenceUID == pseudonymous_uid(series.frame_of_reference_uid, KEY)
    study = frame.RTReferencedStudySequence[0]
    assert study.ReferencedSOPInstanceUID == rt.StudyInstanceUID == pseudonymous_uid(series.study_uid, KEY)
    uids = [pseudonymous_uid(u, KEY) for u in source.meta["source_sop_instance_uids"]]
    masks = rasterise(rt, source, uids)
    assert dice(masks[NAMES[1]], np.asarray(labels.array[0]) == 1) >= 0.95


def test_rtstruct_needs_a_dicom_source_and_says_so_as_every_dicom_output(tmp_path, oblique_ct):
    _, source = oblique_ct
    nifti = read_image(write_image(source, tmp_path / "ct.nii.gz"))
    labels = _labels_with_a_hole(nifti)
    for name in ("rtstruct", "dicom-seg"):
        with pytest.raises(ImageWriteError, match=r"ct.nii.gz is a nifti image, not a DICOM series; "):
            WRITERS[name].write(LabelSet(labels, nifti, NAMES), tmp_path / "out", "c1")
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
