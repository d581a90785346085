"""DICOM frames: every 2D frame of a series as a record of where it is and how its values scale.

A single-frame file is one frame; an enhanced multi-frame file has per-frame (or shared)
functional groups; a classic multi-frame file stacks its frames along the normal. Each record is
checked before any pixel is decoded: Rows, Columns and NumberOfFrames that are not positive or
promise more pixel data than the file holds, positions, orientations or pixel spacings with the
wrong number of values or not finite, non-finite rescale values.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medswin.errors import ImageReadError

__all__ = [
    "DicomFrame",
    "frame_count",
    "frames_of",
    "header_floats",
    "is_compressed",
    "pixel_count",
    "transfer_syntax",
    "whole_number",
]

log = logging.getLogger(__name__)


@dataclass
class DicomFrame:
    """One 2D frame of a series: where it is in space and how its stored values map to real ones."""

    path: Path
    frame: int | None  # 0-based frame index in a multi-frame file, None for a single-frame file
    rows: int
    columns: int
    position: np.ndarray | None  # IPP (mm, LPS)
    orientation: np.ndarray | None  # IOP, 6 values
    pixel_spacing: tuple[float, float] | None  # (between rows, between columns) mm
    slope: float = 1.0
    intercept: float = 0.0
    instance_number: int = 0
    sop_instance_uid: str = ""
    rescaled_by_decoder: bool = False


# ------------------------------------------------------------------- checks
def whole_number(value: Any) -> int | None:
    """An IS/US value as an int, or None when absent or not a whole number (for optional attributes)."""
    try:
        return None if value in (None, "") else int(value)
    except (ValueError, TypeError, OverflowError):
        return None


def pixel_count(path: Path, ds: Any, keyword: str) -> int:
    """Rows or Columns: a positive whole number, else ImageReadError naming the file."""
    value = ds.get(keyword)
    count = whole_number(value)
    if count is None or count < 1:
        raise ImageReadError(f"{path}: {keyword} {value!r} is not a positive number of pixels")
    return count


def frame_count(path: Path, ds: Any) -> int:
    """NumberOfFrames (1 when absent), checked to be a positive whole number."""
    value = ds.get("NumberOfFrames")
    if value in (None, ""):
        return 1
    count = whole_number(value)
    if count is None or count < 1:
        raise ImageReadError(f"{path}: NumberOfFrames {value!r} is not a positive whole number")
    return count


def is_compressed(syntax: Any) -> bool:
    """Whether ``syntax`` (a TransferSyntaxUID, possibly garbage) names an encapsulated transfer syntax."""
    from pydicom.uid import UID

    try:
        uid = UID(str(syntax))
        return bool(uid.is_transfer_syntax and uid.is_compressed)
    except (ValueError, TypeError, AttributeError):
        return False


def transfer_syntax(ds: Any) -> Any | None:
    meta = getattr(ds, "file_meta", None)
    try:
        return meta.get("TransferSyntaxUID") if meta is not None else None
    except Exception:  # a damaged file meta group: treated as unknown
        return None


def _check_pixel_budget(path: Path, ds: Any, rows: int, columns: int, count: int) -> None:
    """Refuse headers that promise more frames or pixels than the file can hold.

    A damaged NumberOfFrames or Rows/Columns would otherwise make the reader build billions of
    frame records or allocate gigabytes before the pixel data proves the header wrong.
    """
    try:
        size = path.stat().st_size
    except OSError:
        return
    if is_compressed(transfer_syntax(ds)):
        needed = 8 * count  # every encapsulated frame takes at least one 8-byte item
    else:
        samples = max(whole_number(ds.get("SamplesPerPixel")) or 1, 1)
        bits = max(whole_number(ds.get("BitsAllocated")) or 1, 1)
        needed = -(-count * rows * columns * samples * bits // 8)
    if needed > size:
        raise ImageReadError(
            f"{path}: the header declares {count} frame(s) of {rows}×{columns} pixels, at least {needed} bytes "
            f"of pixel data, but the file holds {size} bytes; it is truncated or its header is wrong"
        )


def _check_frame(where: str, frame: DicomFrame) -> DicomFrame:
    """Refuse a frame whose geometry or rescale attributes have the wrong number of values or are not finite."""
    for keyword, values, length in (
        ("ImagePositionPatient", frame.position, 3),
        ("ImageOrientationPatient", frame.orientation, 6),
        ("PixelSpacing", frame.pixel_spacing, 2),
    ):
        if values is not None and (len(values) != length or not np.all(np.isfinite(values))):
            raise ImageReadError(
                f"{where}: {keyword} {[round(float(v), 4) for v in values]} must be {length} finite numbers"
            )
    if frame.pixel_spacing is not None and min(frame.pixel_spacing) <= 0:
        raise ImageReadError(f"{where}: PixelSpacing {list(frame.pixel_spacing)} must be positive (mm)")
    if not (np.isfinite(frame.slope) and np.isfinite(frame.intercept)):
        raise ImageReadError(
            f"{where}: RescaleSlope/RescaleIntercept {frame.slope}/{frame.intercept} must be finite numbers"
        )
    return frame


# ------------------------------------------------------------------- frames
def header_floats(value: Any) -> list[float] | None:
    if value is None or value == "":
        return None
    try:
        return [float(v) for v in value]
    except TypeError:
        return [float(value)]


def _first_item(ds: Any, keyword: str) -> Any | None:
    sequence = ds.get(keyword) if ds is not None else None
    return sequence[0] if sequence else None


def _functional(frame_group: Any, shared: Any, sequence: str) -> Any | None:
    """An item of a functional-group ``sequence``, per-frame first, then shared."""
    for group in (frame_group, shared):
        item = _first_item(group, sequence)
        if item is not None:
            return item
    return None


def _rescale_of(item: Any) -> tuple[float, float]:
    if item is None:
        return 1.0, 0.0
    slope = item.get("RescaleSlope")
    intercept = item.get("RescaleIntercept")
    return (
        float(slope) if slope not in (None, "") else 1.0,
        float(intercept) if intercept not in (None, "") else 0.0,
    )


def _vector(values: list[float] | None) -> np.ndarray | None:
    return np.asarray(values, dtype=np.float64) if values else None


def _known_pixel_spacing(path: Path, ds: Any) -> list[float] | None:
    """PixelSpacing, else ImagerPixelSpacing. In a projection radiograph (no ImageOrientationPatient)
    ``0\\0`` means "not calibrated" (real CR films carry it) and counts as absent, so the film is read
    with the usual assumption; in a cross-section it stays an error (the geometry would be wrong)."""
    projection = ds.get("ImageOrientationPatient") is None
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        values = header_floats(ds.get(keyword))
        if values and not any(values) and projection:
            log.warning("%s: %s is %s (unknown); ignored", path, keyword, "\\".join(f"{v:g}" for v in values))
            continue
        if values:
            return values
    return None


def frames_of(path: Path, ds: Any) -> list[DicomFrame]:
    """Every frame of one DICOM object with its geometry and rescale (pixel data not decoded)."""
    rows, columns = pixel_count(path, ds, "Rows"), pixel_count(path, ds, "Columns")
    count = frame_count(path, ds)
    _check_pixel_budget(path, ds, rows, columns, count)
    position = _vector(header_floats(ds.get("ImagePositionPatient")))
    orientation = _vector(header_floats(ds.get("ImageOrientationPatient")))
    spacing = _known_pixel_spacing(path, ds)
    slope, intercept = _rescale_of(ds)

    def frame(index: int | None, **changes: Any) -> DicomFrame:
        fields: dict[str, Any] = {
            "position": position,
            "orientation": orientation,
            "pixel_spacing": tuple(spacing) if spacing else None,
            "slope": slope,
            "intercept": intercept,
        }
        fields.update({key: value for key, value in changes.items() if value is not None})
        made = DicomFrame(
            path,
            index,
            rows,
            columns,
            instance_number=whole_number(ds.get("InstanceNumber")) or 0,
            sop_instance_uid=str(ds.get("SOPInstanceUID", "")),
            **fields,
        )
        return _check_frame(str(path) if index is None else f"{path} (frame {index + 1})", made)

    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame:  # enhanced multi-frame (CT, MR, PET, legacy-converted): per-frame, else shared, groups
        shared = _first_item(ds, "SharedFunctionalGroupsSequence")
        frames = []
        for index, group in enumerate(per_frame):
            plane = _functional(group, shared, "PlanePositionSequence")
            plane_orientation = _functional(group, shared, "PlaneOrientationSequence")
            measures = _functional(group, shared, "PixelMeasuresSequence")
            transformation = _functional(group, shared, "PixelValueTransformationSequence")
            measured = header_floats(measures.get("PixelSpacing")) if measures is not None else None
            frames.append(
                frame(
                    index,
                    position=_vector(header_floats(plane.get("ImagePositionPatient")))
                    if plane is not None
                    else None,
                    orientation=_vector(header_floats(plane_orientation.get("ImageOrientationPatient")))
                    if plane_orientation is not None
                    else None,
                    pixel_spacing=tuple(measured) if measured else None,
                    slope=_rescale_of(transformation)[0] if transformation is not None else None,
                    intercept=_rescale_of(transformation)[1] if transformation is not None else None,
                )
            )
        return frames
    if count == 1:
        return [frame(None)]
    # Classic multi-frame (RT dose, NM, old MR): frames stacked along the normal from one IPP.
    if position is None or orientation is None:
        return [frame(i) for i in range(count)]
    normal = np.cross(orientation[:3], orientation[3:])
    offsets = header_floats(ds.get("GridFrameOffsetVector"))
    if offsets and len(offsets) == count:
        # relative to the IPP when the first offset is 0, else absolute positions along the normal
        relative = np.asarray(offsets) - (0.0 if offsets[0] == 0 else float(position @ normal))
    else:
        step = header_floats(ds.get("SpacingBetweenSlices")) or header_floats(ds.get("SliceThickness"))
        if not step:
            log.warning("%s: multi-frame image without frame spacing; assuming 1 mm between frames", path)
        relative = np.arange(count) * (step[0] if step else 1.0)
    return [frame(i, position=position + r * normal) for i, r in enumerate(relative)]
