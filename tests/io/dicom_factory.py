"""Made-up DICOM data with realistic headers, for tests (no patient data, nothing downloaded).

Each writer takes an :class:`~medswin.io.image.Image` whose geometry says where the slices go
(origin, direction, spacing in LPS), quantises its voxels the way a scanner stores them
(int16 with RescaleSlope/Intercept for CT) and writes complete objects: patient, study, series,
frame of reference, equipment, image plane and pixel modules, with proper SOP classes and UIDs.

Reusable by any test: ``write_series`` (CT/MR single-frame series), ``write_enhanced``
(one enhanced multi-frame file made by highdicom from a series), ``write_radiograph`` (DX),
``write_report`` (a non-image SR object) and ``zip_folder``.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pydicom.valuerep import DSfloat

from medswin.data.phantom import make_ct_phantom
from medswin.io.image import Image

__all__ = [
    "CT_IMAGE_STORAGE",
    "MR_IMAGE_STORAGE",
    "DX_IMAGE_STORAGE",
    "WrittenSeries",
    "ct_image",
    "write_series",
    "write_enhanced",
    "write_radiograph",
    "write_report",
    "zip_folder",
]

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
DX_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.1.1"
BASIC_TEXT_SR_STORAGE = "1.2.840.10008.5.1.4.1.1.88.11"


@dataclass
class WrittenSeries:
    """What a factory wrote: files in slice order, identifiers and the image a reader must return."""

    folder: Path
    files: list[Path]
    study_uid: str
    series_uid: str
    frame_of_reference_uid: str
    sop_instance_uids: list[str]
    expected: Image  # values after rescale, geometry as written (DS-rounded)
    extra: dict = field(default_factory=dict)


def ct_image(
    shape: tuple[int, int, int] = (24, 20, 10),
    spacing: tuple[float, float, float] = (0.8, 0.7, 2.5),
    orientation: str = "LPS",
    seed: int = 0,
) -> Image:
    """A small CT phantom (HU) to write as DICOM; ``orientation`` is LPS, RAS or oblique."""
    return make_ct_phantom(shape=shape, spacing=spacing, orientation=orientation, seed=seed).image  # type: ignore[arg-type]


def _ds(value: float) -> DSfloat:
    return DSfloat(float(value), auto_format=True)


def _patient_study(ds: Dataset, study_uid: str) -> None:
    ds.PatientName = "Phantom^Test"
    ds.PatientID = "MEDSWIN-TEST-0001"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyInstanceUID = study_uid
    ds.StudyDate = "20240102"
    ds.StudyTime = "101500"
    ds.StudyID = "1"
    ds.AccessionNumber = "ACC0001"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "medswin test study"


def _file_meta(sop_class: str, sop_instance: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_instance
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = generate_uid()
    return meta


def _quantise(image: Image, slope: float, intercept: float, dtype: type) -> np.ndarray:
    info = np.iinfo(dtype)
    stored = np.round((image.array[0].astype(np.float64) - intercept) / slope)
    return np.clip(stored, info.min, info.max).astype(dtype)


def write_series(
    folder: str | Path,
    image: Image,
    *,
    modality: str = "CT",
    series_number: int = 1,
    series_description: str = "AXIAL 2.5mm",
    study_uid: str | None = None,
    series_uid: str | None = None,
    frame_of_reference_uid: str | None = None,
    rescale: tuple[float, float] = (1.0, -1024.0),
    random_names: bool = True,
    reverse_instance_numbers: bool = False,
) -> WrittenSeries:
    """Write ``image`` (one channel, 3D) as a single-frame DICOM series under ``folder``.

    Args:
        modality: ``"CT"`` (int16 + rescale to HU) or ``"MR"`` (uint16, no rescale).
        rescale: (RescaleSlope, RescaleIntercept) for CT.
        random_names: name files by random-looking UIDs, so directory order says nothing about
            slice order (``False``: ``slice_0000.dcm``... in slice order).
        reverse_instance_numbers: number instances from the top slice down (as many scanners do).
    """
    if image.spatial_dims != 3 or image.num_channels != 1:
        raise ValueError("write_series needs a one-channel 3D image")
    if np.linalg.det(image.direction) < 0:
        raise ValueError("DICOM stacks have right-handed axes; reorient the image first")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    study_uid = study_uid or generate_uid()
    series_uid = series_uid or generate_uid()
    frame_of_reference_uid = frame_of_reference_uid or generate_uid()
    ct = modality == "CT"
    slope, intercept = rescale if ct else (1.0, 0.0)
    stored = _quantise(image, slope, intercept, np.int16 if ct else np.uint16)
    sop_class = CT_IMAGE_STORAGE if ct else MR_IMAGE_STORAGE
    sx, sy, sz = image.spacing
    row_dir, column_dir, normal = image.direction.T
    iop = [_ds(v) for v in (*row_dir, *column_dir)]
    count = image.shape[2]

    files, uids, positions = [], [], []
    for k in range(count):
        position = np.asarray(image.origin) + normal * sz * k
        ipp = [_ds(v) for v in position]
        positions.append([float(v) for v in ipp])
        sop_instance = generate_uid()
        ds = Dataset()
        ds.file_meta = _file_meta(sop_class, sop_instance)
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.SOPClassUID = sop_class
        ds.SOPInstanceUID = sop_instance
        _patient_study(ds, study_uid)
        ds.Modality = modality
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = series_number
        ds.SeriesDescription = series_description
        ds.SeriesDate = "20240102"
        ds.SeriesTime = "101600"
        ds.BodyPartExamined = "ABDOMEN" if ct else "BRAIN"
        ds.PatientPosition = "HFS"
        ds.FrameOfReferenceUID = frame_of_reference_uid
        ds.PositionReferenceIndicator = ""
        ds.Manufacturer = "medswin-test"
        ds.ManufacturerModelName = "factory"
        ds.InstanceNumber = (count - k) if reverse_instance_numbers else (k + 1)
        ds.AcquisitionNumber = 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ContentDate = "20240102"
        ds.ContentTime = "101700"
        ds.ImagePositionPatient = ipp
        ds.ImageOrientationPatient = iop
        ds.PixelSpacing = [_ds(sy), _ds(sx)]  # (between rows, between columns)
        ds.SliceThickness = _ds(sz * 1.2)  # deliberately not the slice step: readers must use positions
        ds.SliceLocation = _ds(position @ normal)
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = image.shape[1], image.shape[0]
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1 if ct else 0
        if ct:
            ds.RescaleIntercept = _ds(intercept)
            ds.RescaleSlope = _ds(slope)
            ds.RescaleType = "HU"
            ds.KVP = "120"
            ds.ConvolutionKernel = "STANDARD"
            ds.WindowCenter = "40"
            ds.WindowWidth = "400"
        else:
            ds.ScanningSequence = "SE"
            ds.SequenceVariant = "NONE"
            ds.ScanOptions = ""
            ds.MRAcquisitionType = "2D"
            ds.RepetitionTime = "500"
            ds.EchoTime = "15"
            ds.EchoTrainLength = 1
            ds.MagneticFieldStrength = "1.5"
        ds.PixelData = np.ascontiguousarray(stored[:, :, k].T).tobytes()
        name = f"{generate_uid(prefix=None)[-12:]}.dcm" if random_names else f"slice_{k:04d}.dcm"
        path = folder / name
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
        uids.append(sop_instance)

    # What a reader must return: rescaled values (float64, exact) on the DS-rounded geometry.
    row_written = np.array([float(v) for v in iop[:3]])
    column_written = np.array([float(v) for v in iop[3:]])
    normal_written = np.cross(row_written, column_written)
    span = (np.asarray(positions[-1]) - np.asarray(positions[0])) @ normal_written
    step = span / (count - 1) if count > 1 else sz
    expected = Image(
        (stored.astype(np.float64) * slope + intercept)[None],
        (float(_ds(sx)), float(_ds(sy)), float(step)),
        tuple(positions[0]),
        np.stack([row_written, column_written, normal_written], axis=1),
    )
    return WrittenSeries(folder, files, study_uid, series_uid, frame_of_reference_uid, uids, expected)


def write_enhanced(path: str | Path, series: WrittenSeries) -> Path:
    """Convert a written single-frame series into one enhanced (legacy-converted) multi-frame file."""
    import highdicom as hd

    datasets = [pydicom.dcmread(f) for f in series.files]
    sop_class = datasets[0].SOPClassUID
    convert = (
        hd.legacy.LegacyConvertedEnhancedCTImage
        if sop_class == CT_IMAGE_STORAGE
        else hd.legacy.LegacyConvertedEnhancedMRImage
    )
    # Shuffled frame order: readers must sort frames by position, not trust the file's order.
    order = np.random.default_rng(7).permutation(len(datasets))
    enhanced = convert(
        [datasets[i] for i in order],
        series_instance_uid=generate_uid(),
        series_number=50,
        sop_instance_uid=generate_uid(),
        instance_number=1,
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    enhanced.save_as(path, enforce_file_format=True)
    return path


def write_radiograph(
    path: str | Path,
    shape: tuple[int, int] = (40, 32),
    pixel_spacing: tuple[float, float] = (0.15, 0.14),
    *,
    photometric: str = "MONOCHROME2",
    spacing_attribute: str = "ImagerPixelSpacing",
    seed: int = 0,
    pixels: np.ndarray | None = None,
    orientation: tuple[str, str] = ("L", "F"),
    view_position: str = "PA",
    distances_mm: tuple[float, float] | None = None,
) -> tuple[Path, np.ndarray]:
    """Write a DX radiograph of ``shape`` (X=columns, Y=rows); returns the path and stored pixels (X, Y).

    ``pixels`` (X, Y) replaces the random content; ``distances_mm`` = (DistanceSourceToDetector,
    DistanceSourceToPatient).
    """
    if pixels is None:
        pixels = np.random.default_rng(seed).integers(0, 4096, size=shape, dtype=np.uint16)
    pixels = np.asarray(pixels, dtype=np.uint16)
    shape = pixels.shape
    sop_instance = generate_uid()
    ds = Dataset()
    ds.file_meta = _file_meta(DX_IMAGE_STORAGE, sop_instance)
    ds.SOPClassUID = DX_IMAGE_STORAGE
    ds.SOPInstanceUID = sop_instance
    _patient_study(ds, generate_uid())
    ds.Modality = "DX"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = 1
    ds.SeriesDescription = "CHEST PA"
    ds.Manufacturer = "medswin-test"
    ds.InstanceNumber = 1
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.PatientOrientation = list(orientation)
    ds.ViewPosition = view_position
    if distances_mm is not None:
        ds.DistanceSourceToDetector = _ds(distances_mm[0])
        ds.DistanceSourceToPatient = _ds(distances_mm[1])
    ds.PresentationIntentType = "FOR PRESENTATION"
    setattr(ds, spacing_attribute, [_ds(pixel_spacing[1]), _ds(pixel_spacing[0])])
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.Rows, ds.Columns = shape[1], shape[0]
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.PixelData = np.ascontiguousarray(pixels.T).tobytes()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path, pixels


def write_report(path: str | Path, study_uid: str | None = None) -> Path:
    """Write a Basic Text SR (a DICOM object without pixels, as found beside image series)."""
    sop_instance = generate_uid()
    ds = Dataset()
    ds.file_meta = _file_meta(BASIC_TEXT_SR_STORAGE, sop_instance)
    ds.SOPClassUID = BASIC_TEXT_SR_STORAGE
    ds.SOPInstanceUID = sop_instance
    _patient_study(ds, study_uid or generate_uid())
    ds.Modality = "SR"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = 900
    ds.ValueType = "CONTAINER"
    ds.ContinuityOfContent = "SEPARATE"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def zip_folder(folder: str | Path, zip_path: str | Path, *, prefix: str = "export") -> Path:
    """Zip every file under ``folder`` below a top folder ``prefix`` (as PACS exports do)."""
    folder, zip_path = Path(folder), Path(zip_path)
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, f"{prefix}/{path.relative_to(folder).as_posix()}")
    return zip_path
