"""DICOM RT Structure Set: the labels as planar contours on every source slice, for planning systems.

Radiotherapy planning systems (DVH, dose constraints per organ) import structures as RTSTRUCT,
not as DICOM-SEG. Each label becomes one ROI (name and colour from the model card); each source
slice it crosses gets ``CLOSED_PLANAR`` contours traced by scikit-image's ``find_contours`` at the
0.5 level of the slice's mask, i.e. along the boundary between labelled and unlabelled pixel
centres. A hole is its own contour inside the outer one: planning systems combine the contours of
one plane by parity (even-odd), which keeps it a hole. Points are converted from pixel indices to
patient LPS mm through the source geometry, so they lie in the plane of the slice they reference
(``ContourImageSequence``), oblique series included.

The object references the series exactly as the DICOM-SEG does (:func:`medswin.io.dicom_seg.source_datasets`):
frame of reference, study, series and every source SOP instance; the patient and study come from
the source, and de-identification (:mod:`medswin.io.deidentify`) applies the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from medswin.io.outputs.registry import LabelSet, OutputWriter, register_writer

__all__ = ["RTSTRUCT", "RT_STRUCTURE_SET_STORAGE", "slice_contours", "write_rtstruct"]

RT_STRUCTURE_SET_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
#: the Study Component Management SOP class RT objects name when they reference a study.
_STUDY_REFERENCE_CLASS = "1.2.840.10008.3.1.2.3.1"
_COPIED = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
    "StudyDescription",
)
#: type 2 attributes: present, empty when the source has no value.
_TYPE2 = frozenset(
    {
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "StudyDate",
        "StudyTime",
        "ReferringPhysicianName",
        "StudyID",
        "AccessionNumber",
    }
)


def slice_contours(mask: Any) -> list[Any]:
    """Closed contours ``(n, 2)`` of a boolean ``(X, Y)`` slice in pixel indices, last point not repeated.

    The mask is padded with background so a region touching the edge is closed too.
    """
    import numpy as np
    from skimage.measure import find_contours

    padded = np.pad(np.asarray(mask, dtype=np.float32), 1)
    contours = []
    for contour in find_contours(padded, 0.5):
        points = contour[:-1] - 1.0 if np.allclose(contour[0], contour[-1]) else contour - 1.0
        if len(points) >= 3:
            contours.append(points)
    return contours


def _ds(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".")[:16]


def _sequence_item(**attributes: Any) -> Any:
    from pydicom.dataset import Dataset

    item = Dataset()
    for keyword, value in attributes.items():
        setattr(item, keyword, value)
    return item


def write_rtstruct(request: LabelSet, path: str | Path, *, series_number: int = 902) -> Path:
    """Write ``request.labels`` as an RT Structure Set referencing the DICOM series of ``request.source``.

    Args:
        request: the labels (``(1, X, Y, Z)``, resampled by nearest neighbour onto the source grid when
            not on it), the source (read from a single-frame DICOM series; its ``meta["source_files"]``
            are re-read), ROI names (every named label is an ROI, without contours when absent),
            colours (:func:`medswin.io.anatomy.structure_colors`: the table's, else these), the
            algorithm (structure set name), series description and de-identification key.
        path: output ``.dcm`` (written atomically).
        series_number: the new series' number.
    """
    import numpy as np
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid

    from medswin import __version__
    from medswin.errors import ImageWriteError
    from medswin.io.anatomy import structure_colors
    from medswin.io.dicom_seg import source_datasets
    from medswin.io.geometry import resample_to_reference
    from medswin.io.writers import atomic_output

    labels, source, label_names = request.labels, request.source, request.names
    algorithm_name, deidentify_key = request.algorithm, request.deidentify_key
    path = Path(path)
    where = str(path)
    if labels.spatial_dims != 3 or labels.num_channels != 1:
        raise ImageWriteError(f"{where}: RTSTRUCT is written from one 3D label map")
    datasets = source_datasets(source)
    if source.meta.get("source_frame_numbers") is not None:
        raise ImageWriteError(
            f"{where}: RTSTRUCT contours reference single-frame images; this source is one multi-frame "
            "file: choose dicom-seg for it"
        )
    uids = [str(ds.SOPInstanceUID) for ds in datasets]
    expected = source.meta.get("source_sop_instance_uids")
    if (expected is not None and list(expected) != uids) or len(datasets) != labels.shape[2]:
        raise ImageWriteError(
            f"{where}: the source DICOM files changed since they were read; read them again"
        )
    if not labels.same_grid(source, atol_mm=1e-4):
        labels = resample_to_reference(labels.with_array(labels.array, kind="label"), source, "nearest")
    values = np.asarray(labels.array[0])
    named = sorted(int(v) for v in label_names if int(v) != 0)
    unnamed = sorted({int(v) for v in np.unique(values)} - set(named) - {0})
    if unnamed:
        raise ImageWriteError(f"{where}: label value(s) {unnamed} have no name; name every label")
    if not named:
        raise ImageWriteError(f"{where}: no label is named; an RTSTRUCT needs at least one ROI")

    first = datasets[0]
    frame_of_reference = str(first.FrameOfReferenceUID)
    now = __import__("datetime").datetime.now()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RT_STRUCTURE_SET_STORAGE
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = FileDataset(where, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = RT_STRUCTURE_SET_STORAGE
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.InstanceCreationDate = now.strftime("%Y%m%d")
    ds.InstanceCreationTime = now.strftime("%H%M%S")
    for keyword in _COPIED:
        value = first.get(keyword)
        if value is not None or keyword in _TYPE2:
            setattr(ds, keyword, value if value is not None else "")
    ds.FrameOfReferenceUID = frame_of_reference  # the Frame of Reference module (the source's frame)
    ds.PositionReferenceIndicator = first.get("PositionReferenceIndicator") or ""
    ds.Modality = "RTSTRUCT"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = series_number
    ds.SeriesDescription = request.series_description[:64]
    ds.OperatorsName = ""
    ds.Manufacturer = "medswin"
    ds.ManufacturerModelName = "medswin"
    ds.SoftwareVersions = __version__
    ds.InstanceNumber = 1
    ds.StructureSetLabel = "medswin"[:16]
    ds.StructureSetName = str(algorithm_name)[:64]
    ds.StructureSetDate = ds.InstanceCreationDate
    ds.StructureSetTime = ds.InstanceCreationTime

    images = [
        _sequence_item(
            ReferencedSOPClassUID=str(d.SOPClassUID), ReferencedSOPInstanceUID=str(d.SOPInstanceUID)
        )
        for d in datasets
    ]
    series = _sequence_item(SeriesInstanceUID=str(first.SeriesInstanceUID), ContourImageSequence=images)
    study = _sequence_item(
        ReferencedSOPClassUID=_STUDY_REFERENCE_CLASS,
        ReferencedSOPInstanceUID=str(first.StudyInstanceUID),
        RTReferencedSeriesSequence=[series],
    )
    ds.ReferencedFrameOfReferenceSequence = [
        _sequence_item(FrameOfReferenceUID=frame_of_reference, RTReferencedStudySequence=[study])
    ]

    shown = structure_colors(label_names, request.colors)
    lps = np.asarray(source.lps_affine, dtype=np.float64)
    rois, roi_contours, observations = [], [], []
    for number, value in enumerate(named, start=1):
        rois.append(
            _sequence_item(
                ROINumber=number,
                ReferencedFrameOfReferenceUID=frame_of_reference,
                ROIName=str(label_names[value])[:64],
                ROIGenerationAlgorithm="AUTOMATIC",
                ROIGenerationDescription=f"{algorithm_name} (medswin {__version__})"[:64],
            )
        )
        contours = []
        mask = values == value
        for k in np.flatnonzero(mask.any(axis=(0, 1))):
            for points in slice_contours(mask[:, :, k]):
                index = np.c_[points, np.full(len(points), k), np.ones(len(points))]
                patient = (lps @ index.T)[:3].T
                contours.append(
                    _sequence_item(
                        ContourImageSequence=[
                            _sequence_item(
                                ReferencedSOPClassUID=str(datasets[k].SOPClassUID),
                                ReferencedSOPInstanceUID=uids[k],
                            )
                        ],
                        ContourGeometricType="CLOSED_PLANAR",
                        NumberOfContourPoints=len(patient),
                        ContourNumber=len(contours) + 1,
                        ContourData=[_ds(c) for c in patient.ravel()],
                    )
                )
        item = _sequence_item(ReferencedROINumber=number, ROIDisplayColor=list(shown.get(value, (255, 0, 0))))
        if contours:
            item.ContourSequence = contours
        roi_contours.append(item)
        observations.append(
            _sequence_item(
                ObservationNumber=number,
                ReferencedROINumber=number,
                RTROIInterpretedType="ORGAN",
                ROIInterpreter="",
            )
        )
    ds.StructureSetROISequence = rois
    ds.ROIContourSequence = roi_contours
    ds.RTROIObservationsSequence = observations
    if deidentify_key is not None:
        from medswin.io.deidentify import deidentify_dataset

        deidentify_dataset(ds, deidentify_key)
    with atomic_output(path) as temporary:
        try:
            pydicom.dcmwrite(temporary, ds, enforce_file_format=True)
        except (ValueError, TypeError) as error:
            raise ImageWriteError(f"{where}: could not write the RTSTRUCT ({error})") from error
    return path


def _write(labels: LabelSet, targets: Mapping[int, Path]) -> list[Path]:
    return [write_rtstruct(labels, targets[0])]


RTSTRUCT = register_writer(
    OutputWriter("rtstruct", ".rtstruct.dcm", "RTSTRUCT", _write, needs_dicom_source=True, sendable=True)
)
