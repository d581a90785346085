"""DICOM series assembly into one :class:`Image` with exact geometry.

Three steps, one module each: discovery (:mod:`medswin.io.dicom_discovery`) groups a folder's
image objects by SeriesInstanceUID from headers alone; frames (:mod:`medswin.io.dicom_frames`)
turn every frame (a single-frame file, or one frame of a multi-frame file) into a record with its
position, orientation, pixel spacing and rescale; this module sorts the frames along the slice
normal, checks the stack before any pixel is decoded, decodes and builds the image:

- one orientation and one matrix size per series;
- a header that cannot be right is refused with the file and attribute named: Rows, Columns or
  NumberOfFrames that are not positive or promise more pixel data than the file holds, positions,
  orientations or pixel spacings with the wrong number of values or not finite, a value pydicom
  cannot parse (a file like that beside readable images is skipped with a warning);
- no two frames at one position (two acquisitions sharing a SeriesInstanceUID, or one file copied);
- no missing slice (a step above 1.5× the median) and no varying step, unless ``allow_gaps``,
  in which case the stack is interpolated onto a regular grid and the fact recorded in ``meta``;
- no sheared stack (gantry tilt): the step between slices must follow the slice normal.

The geometry follows ITK's (SimpleITK ``ImageSeriesReader``): array axis 0 runs along the row
direction (``IOP[:3]``), axis 1 along the column direction, axis 2 along their cross product;
the slice spacing comes from the positions, never from SliceThickness.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medswin.errors import ImageReadError
from medswin.io.dicom_discovery import (
    HEADER_ERRORS,
    PROJECTION_MODALITIES,
    SeriesInfo,
    discover_series,
    is_image,
    no_images_error,
    read_header,
    scan_folder,
    series_info,
    sop_class_name,
    summarise,
)
from medswin.io.dicom_frames import (
    DicomFrame,
    frame_count,
    frames_of,
    header_floats,
    is_compressed,
    transfer_syntax,
)
from medswin.io.image import Image, ImageKind

__all__ = [
    "SeriesInfo",
    "DicomFrame",
    "read_header",
    "scan_folder",
    "series_info",
    "summarise",
    "discover_series",
    "no_images_error",
    "frames_of",
    "read_series",
    "read_dicom_file",
]

log = logging.getLogger(__name__)

#: attributes copied into ``meta["dicom"]`` (no patient name or id: outputs re-read them from the source files).
IDENTIFYING_ATTRIBUTES = (
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "FrameOfReferenceUID",
    "SOPClassUID",
    "Modality",
    "SeriesDescription",
    "SeriesNumber",
    "StudyDate",
    "StudyTime",
    "SeriesDate",
    "Manufacturer",
    "ManufacturerModelName",
    "BodyPartExamined",
    "ImageType",
    "PhotometricInterpretation",
    "WindowCenter",
    "WindowWidth",
    "SliceThickness",
    "PatientPosition",
    # projection radiographs (medswin x2s): view, display orientation and the imaging geometry
    "ViewPosition",
    "PatientOrientation",
    "PixelSpacing",
    "ImagerPixelSpacing",
    "DistanceSourceToDetector",
    "DistanceSourceToPatient",
)

_IOP_TOLERANCE = 1e-3  # DS strings are rounded; 1e-3 is 0.06 degrees
_DUPLICATE_TOLERANCE_MM = 1e-3
_GAP_FACTOR = 1.5
_UNIFORM_TOLERANCE = 0.01  # relative step variation accepted as rounding


# ----------------------------------------------------------------- geometry
@dataclass
class _Stack:
    frames: list[DicomFrame]
    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: np.ndarray
    resample_to: np.ndarray | None = None  # projected positions of a regular grid (allow_gaps)
    projected: np.ndarray | None = None  # projected positions of the frames (sorted)


def _plane_spacing(frame: DicomFrame, where: str) -> tuple[float, float]:
    """(along the row direction, along the column direction) in mm, i.e. array axes (X, Y)."""
    if frame.pixel_spacing is None:
        log.warning("%s: no PixelSpacing; assuming 1 mm pixels", where)
        return 1.0, 1.0
    row_spacing, column_spacing = frame.pixel_spacing[:2]
    return float(column_spacing), float(row_spacing)


def _single_slice_step(ds: Any) -> float:
    for keyword in ("SpacingBetweenSlices", "SliceThickness"):
        try:
            value = header_floats(ds.get(keyword))
        except Exception:  # optional and only a fallback: an unparsable value is ignored
            continue
        if value and np.isfinite(value[0]) and value[0] > 0:
            return float(value[0])
    return 1.0


def _assemble(frames: list[DicomFrame], where: str, first_header: Any, allow_gaps: bool) -> _Stack:
    """Sort ``frames`` along the slice normal and check the stack; geometry as ITK builds it."""
    sizes = Counter((f.rows, f.columns) for f in frames)
    if len(sizes) > 1:
        listed = ", ".join(f"{n} frames of {r}×{c}" for (r, c), n in sizes.most_common())
        raise ImageReadError(
            f"{where}: frames of different sizes in one series ({listed}); cannot stack them"
        )

    positioned = [f for f in frames if f.position is not None and f.orientation is not None]
    projection = str(first_header.get("Modality", "")) in PROJECTION_MODALITIES
    if not positioned or (projection and len(frames) == 1):
        if len(frames) == 1:  # projection radiograph / secondary capture: a 2D image
            column_step, row_step = _plane_spacing(frames[0], where)
            return _Stack(frames, (column_step, row_step), (0.0, 0.0), np.eye(2))
        if len({f.path for f in frames}) == 1:
            log.warning("%s: multi-frame image without patient geometry; frames stacked 1 mm apart", where)
            column_step, row_step = _plane_spacing(frames[0], where)
            return _Stack(frames, (column_step, row_step, 1.0), (0.0, 0.0, 0.0), np.eye(3))
        raise ImageReadError(
            f"{where}: series holds {len(frames)} images without ImagePositionPatient/ImageOrientationPatient "
            "(separate projection views); read one file at a time"
        )
    if len(positioned) != len(frames):
        raise ImageReadError(f"{where}: some frames lack ImagePositionPatient/ImageOrientationPatient")

    orientations = np.stack([f.orientation for f in frames])  # type: ignore[misc]
    deviation = np.abs(orientations - orientations[0]).max()
    if deviation > _IOP_TOLERANCE:
        distinct = len({tuple(np.round(o, 3)) for o in orientations})
        raise ImageReadError(
            f"{where}: ImageOrientationPatient differs within the series ({distinct} orientations, e.g. a "
            "localiser mixed with the axial stack); pick a series with one orientation"
        )
    row_dir, column_dir = orientations[0][:3], orientations[0][3:]
    if (
        abs(np.linalg.norm(row_dir) - 1) > 1e-2
        or abs(np.linalg.norm(column_dir) - 1) > 1e-2
        or abs(row_dir @ column_dir) > 1e-2
    ):
        raise ImageReadError(
            f"{where}: ImageOrientationPatient {orientations[0].tolist()} is not two unit, orthogonal vectors"
        )
    normal = np.cross(row_dir, column_dir)
    direction = np.stack([row_dir, column_dir, normal], axis=1)
    column_step, row_step = _plane_spacing(frames[0], where)

    projected = np.array([f.position @ normal for f in frames])  # type: ignore[operator]
    order = sorted(
        range(len(frames)), key=lambda i: (projected[i], frames[i].instance_number, frames[i].frame or 0)
    )
    frames = [frames[i] for i in order]
    projected = projected[order]
    origin = tuple(float(v) for v in frames[0].position)  # type: ignore[union-attr]

    if len(frames) == 1:
        step = _single_slice_step(first_header)
        return _Stack(frames, (column_step, row_step, step), origin, direction)

    steps = np.diff(projected)
    duplicates = np.flatnonzero(steps < _DUPLICATE_TOLERANCE_MM)
    if duplicates.size:
        at = projected[duplicates[0]]
        first, second = frames[duplicates[0]], frames[duplicates[0] + 1]
        if first.sop_instance_uid and first.sop_instance_uid == second.sop_instance_uid:
            raise ImageReadError(
                f"{where}: {first.path.name} and {second.path.name} hold the same image (SOPInstanceUID "
                f"{first.sop_instance_uid}, at {at:.2f} mm along the slice normal); remove the copy"
            )
        raise ImageReadError(
            f"{where}: {duplicates.size} frame(s) share a position with another (first at {at:.2f} mm along the "
            "slice normal); the series mixes two acquisitions (echoes, phases or a repeated scan). "
            "Separate them into distinct folders"
        )
    span = projected[-1] - projected[0]
    in_plane = (frames[-1].position - frames[0].position) - span * normal  # type: ignore[operator]
    if np.linalg.norm(in_plane) > max(0.01, 0.01 * span):
        raise ImageReadError(
            f"{where}: the slices shift by {np.linalg.norm(in_plane):.2f} mm within their plane over the stack "
            "(gantry tilt or a sheared acquisition); medswin needs an orthogonal grid, resample the series first"
        )
    median = float(np.median(steps))
    gaps = np.flatnonzero(steps > _GAP_FACTOR * median)
    uneven = np.abs(steps - median) > max(_UNIFORM_TOLERANCE * median, 1e-3)
    if gaps.size or uneven.any():
        if gaps.size:
            problem = (
                f"{gaps.size} missing slice(s): a step of {steps[gaps[0]]:.2f} mm where the others are "
                f"{median:.2f} mm (at {projected[gaps[0]]:.2f} mm along the slice normal)"
            )
        else:
            problem = f"the slice step varies from {steps.min():.3f} to {steps.max():.3f} mm"
        if not allow_gaps:
            raise ImageReadError(
                f"{where}: {problem}. Check the export is complete, or pass allow_gaps=True "
                "(--allow-gaps) to interpolate the stack onto a regular grid"
            )
        count = int(round(span / median)) + 1
        if count > 2 * len(frames):
            raise ImageReadError(
                f"{where}: {problem}; filling the gaps would need {count} slices for {len(frames)} frames, "
                "too many to interpolate. Check the export is complete"
            )
        grid = projected[0] + np.arange(count) * median
        log.warning(
            "%s: %s; interpolating %d frames onto %d regular slices", where, problem, len(frames), count
        )
        return _Stack(frames, (column_step, row_step, median), origin, direction, grid, projected)

    # ITK's ImageSeriesReader: spacing from the first and last positions.
    return _Stack(frames, (column_step, row_step, float(span / (len(frames) - 1))), origin, direction)


# ------------------------------------------------------------------- pixels
def _one_line(error: BaseException, limit: int = 300) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _decoder_available(syntax: Any) -> bool:
    """Whether pydicom has a working decoder plugin for compressed ``syntax`` (False when it cannot tell)."""
    try:
        from pydicom.pixels import get_decoder
    except ImportError:  # pydicom 2: no registry to ask
        return False
    try:
        return bool(get_decoder(syntax).is_available)
    except (NotImplementedError, ValueError, TypeError):
        return False


def _decode_file(path: Path) -> tuple[np.ndarray, Any, bool]:
    """Pixel array of ``path`` (frames first for multi-frame) and its dataset.

    pydicom decodes; SimpleITK (GDCM) is tried only for compressed transfer syntaxes none of
    pydicom's installed plugins reads. Pixel data that pydicom has a decoder for but cannot decode
    is damaged or does not match its header, and is refused, never guessed at.
    The boolean says whether the decoder already applied the rescale (SimpleITK/GDCM does).
    """
    import pydicom

    try:
        ds = pydicom.dcmread(path)
    except Exception as error:
        raise ImageReadError(
            f"{path}: unreadable DICOM file ({type(error).__name__}: {_one_line(error)})"
        ) from error
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise ImageReadError(f"{path}: DICOM image without pixel data (truncated file?)")
    try:
        return np.asarray(ds.pixel_array), ds, False
    except Exception as pydicom_error:
        syntax = transfer_syntax(ds)
        name = getattr(syntax, "name", str(syntax))
        if not is_compressed(syntax) or _decoder_available(syntax):
            # pydicom has a decoder for this data and it failed: the file is damaged. GDCM is not tried
            # on it: damaged compressed data can crash GDCM (SIGFPE), taking a whole batch down.
            raise ImageReadError(
                f"{path}: cannot decode the {name} pixel data ({_one_line(pydicom_error)}); the file is "
                "truncated or corrupt, or its Rows, Columns, BitsAllocated or SamplesPerPixel do not match it"
            ) from pydicom_error
        import SimpleITK as sitk

        try:
            array = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
        except RuntimeError as error:
            raise ImageReadError(
                f"{path}: the pixel data is compressed as {name} ({syntax}), which no installed decoder reads "
                f"({_one_line(pydicom_error)}); install the plugin named there, or export the series uncompressed"
            ) from error
        if frame_count(path, ds) == 1 and array.ndim >= 3 and array.shape[0] == 1:
            array = array[0]
        return array, ds, True


def _needs_rescale(frame: DicomFrame) -> bool:
    return not frame.rescaled_by_decoder and (frame.slope != 1.0 or frame.intercept != 0.0)


def _output_dtype(planes: list[np.ndarray], frames: list[DicomFrame]) -> np.dtype:
    """Stored type when nothing is rescaled; the smallest integer type when every slope and intercept
    is integral (CT's 1 and -1024: int16 HU, as GDCM does); float32 otherwise."""
    raw = np.result_type(*[p.dtype for p in planes])
    rescaled = [(p, f) for p, f in zip(planes, frames) if _needs_rescale(f)]
    if not rescaled:
        return np.dtype(raw)
    if not np.issubdtype(raw, np.integer) or not all(
        float(f.slope).is_integer() and float(f.intercept).is_integer() for _, f in rescaled
    ):
        return np.dtype(np.float32)
    ends = [
        f.slope * float(value) + f.intercept for p, f in zip(planes, frames) for value in (p.min(), p.max())
    ]
    for candidate in (np.int16, np.int32, np.int64):
        info = np.iinfo(candidate)
        if info.min <= min(ends) and max(ends) <= info.max:
            return np.dtype(candidate)
    return np.dtype(np.float64)  # a rescale beyond int64 (a damaged header): no integer type holds it


def _fill_volume(planes: list[np.ndarray], frames: list[DicomFrame]) -> np.ndarray:
    """``(samples, X, Y, Z)`` volume from ``(rows, columns[, samples])`` planes, rescale applied plane by plane.

    The buffer is filled slice by slice in file order (contiguous copies) and returned as a
    transposed view: X varies fastest in memory, the order NIfTI and ITK store voxels in.
    """
    dtype = _output_dtype(planes, frames)
    first = planes[0]
    samples = first.shape[2] if first.ndim == 3 else 1
    buffer = np.empty((len(planes), first.shape[0], first.shape[1], samples), dtype=dtype)
    # int32 arithmetic suffices whenever the result fits int16/int32 (the common CT case)
    compute = (
        np.float64 if not np.issubdtype(dtype, np.integer) else (np.int64 if dtype == np.int64 else np.int32)
    )
    for k, (plane, frame) in enumerate(zip(planes, frames)):
        if _needs_rescale(frame):
            plane = plane.astype(compute) * compute(frame.slope) + compute(frame.intercept)
        buffer[k] = plane.reshape(buffer.shape[1:])
    return buffer.transpose(3, 2, 1, 0)


def _frame_pixels(array: np.ndarray, ds: Any, frame: int | None) -> np.ndarray:
    """One frame ``(rows, columns[, samples])`` out of a decoded array."""
    count = int(ds.get("NumberOfFrames", 1) or 1)
    if frame is None or count == 1:
        return array[0] if (count == 1 and array.ndim == 4) else array
    return array[frame]


def _interpolate_slices(
    volume: np.ndarray, positions: np.ndarray, grid: np.ndarray, kind: ImageKind
) -> np.ndarray:
    """Resample ``volume`` (..., Z at ``positions`` mm) onto ``grid`` mm along the last axis."""
    upper = np.clip(np.searchsorted(positions, grid, side="left"), 1, len(positions) - 1)
    lower = upper - 1
    weight = (grid - positions[lower]) / (positions[upper] - positions[lower])
    weight = np.clip(weight, 0.0, 1.0)
    if kind == "label" or not np.issubdtype(volume.dtype, np.number):
        return volume[..., np.where(weight < 0.5, lower, upper)]
    out = (
        volume[..., lower].astype(np.float32) * (1 - weight) + volume[..., upper].astype(np.float32) * weight
    )
    return out.astype(np.float32)


def _plain(value: Any) -> Any:
    """pydicom values as JSON-friendly Python (str, int, float, list)."""
    from pydicom.multival import MultiValue
    from pydicom.valuerep import IS, DSfloat

    if isinstance(value, MultiValue | list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, IS):
        return int(value)
    if isinstance(value, DSfloat | float):
        return float(value)
    if isinstance(value, int):
        return int(value)
    return str(value)


def dicom_meta(ds: Any) -> dict[str, Any]:
    """The identifying, non-patient attributes of ``ds`` as plain values."""
    return {key: _plain(ds.get(key)) for key in IDENTIFYING_ATTRIBUTES if ds.get(key) not in (None, "")}


def _build_image(stack: _Stack, where: str, kind: ImageKind, header: Any) -> Image:
    frames = stack.frames
    decoded: dict[Path, tuple[np.ndarray, Any, bool]] = {}
    planes: list[np.ndarray] = []
    for frame in frames:
        if frame.path not in decoded:
            decoded[frame.path] = _decode_file(frame.path)
        array, ds, rescaled = decoded[frame.path]
        frame.rescaled_by_decoder = rescaled
        pixels = _frame_pixels(array, ds, frame.frame)
        if pixels.shape[:2] != (frame.rows, frame.columns):
            raise ImageReadError(
                f"{frame.path}: pixel data of shape {pixels.shape} does not match Rows×Columns"
            )
        if "ModalityLUTSequence" in ds and frame.frame is None and not rescaled:
            from pydicom.pixels import apply_modality_lut

            pixels = apply_modality_lut(pixels, ds)
        planes.append(pixels)
    array = _fill_volume(planes, frames)
    del planes, decoded

    try:
        described = dicom_meta(header)
    except Exception as error:  # a damaged descriptive attribute (unknown VR, bad length)
        raise ImageReadError(
            f"{where}: damaged DICOM header ({type(error).__name__}: {_one_line(error)})"
        ) from error
    meta: dict[str, Any] = {"path": where, "format": "dicom", "dicom": described}
    meta["modality"] = meta["dicom"].get("Modality", "")
    files: list[str] = []
    for frame in frames:
        if not files or files[-1] != str(frame.path):
            files.append(str(frame.path))
    meta["source_files"] = files
    meta["source_sop_instance_uids"] = [f.sop_instance_uid for f in frames]
    if any(f.frame is not None for f in frames):
        meta["source_frame_numbers"] = [(f.frame or 0) + 1 for f in frames]

    if len(stack.spacing) == 2:
        array = array[..., 0]
        photometric = str(header.get("PhotometricInterpretation", ""))
        if photometric == "MONOCHROME1" and kind == "intensity":
            # Radiographs stored "white is low": flip so that higher means brighter, as models expect.
            wide = array.astype(np.float64 if np.issubdtype(array.dtype, np.floating) else np.int64)
            array = (wide.max() + wide.min() - wide).astype(array.dtype)
            meta["inverted_monochrome1"] = True
    if stack.resample_to is not None:
        array = _interpolate_slices(array, stack.projected, stack.resample_to, kind)  # type: ignore[arg-type]
        meta["dicom"]["interpolated_onto_regular_grid"] = True
        meta.pop("source_sop_instance_uids")  # frames no longer match slices one to one
    try:
        return Image(array, stack.spacing, stack.origin, stack.direction, kind, meta)
    except Exception as error:
        raise ImageReadError(f"{where}: invalid geometry ({error})") from error


# --------------------------------------------------------------------- API
def read_series(
    members: list[tuple[Path, Any]], where: str, *, kind: ImageKind = "intensity", allow_gaps: bool = False
) -> Image:
    """One :class:`Image` from the ``(path, header)`` pairs of one series (see module docstring)."""
    frames = []
    for path, ds in members:
        try:
            frames.extend(frames_of(path, ds))
        except HEADER_ERRORS as error:
            raise ImageReadError(
                f"{path}: malformed image plane attributes ({type(error).__name__}: {error})"
            ) from error
    header = members[0][1]
    uid = str(header.get("SeriesInstanceUID", ""))
    label = f"{where} (series {uid})" if uid else where
    stack = _assemble(frames, label, header, allow_gaps)
    return _build_image(stack, where, kind, header)


def read_dicom_file(path: Path, *, kind: ImageKind = "intensity", allow_gaps: bool = False) -> Image:
    """One DICOM file: a 2D radiograph, one slice, or a multi-frame volume."""
    ds = read_header(path, strict=True)
    if ds is None:
        raise ImageReadError(f"{path}: not a readable DICOM file")
    if not is_image(ds):
        raise ImageReadError(f"{path}: DICOM {sop_class_name(ds)} object holds no image to read")
    return read_series([(path, ds)], str(path), kind=kind, allow_gaps=allow_gaps)
