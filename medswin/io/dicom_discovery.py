"""DICOM discovery: which image series a folder holds, from headers alone.

Headers are read with ``stop_before_pixels``; the image objects are grouped by SeriesInstanceUID
and what is not an image (SR, PR, KO, RTSTRUCT, SEG...) is counted and skipped, so ``medswin info``
and the readers can list and choose series before any pixel is decoded. A header pydicom cannot
parse beside readable images is skipped with a warning.
"""

from __future__ import annotations

import logging
import os
import struct
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medswin.errors import ImageReadError
from medswin.io.dicom_frames import frame_count, header_floats, pixel_count, whole_number
from medswin.io.phi import remember_identifiers

__all__ = [
    "HEADER_ERRORS",
    "PROJECTION_MODALITIES",
    "SEGMENTATION_SOP_CLASS",
    "SeriesInfo",
    "discover_series",
    "is_image",
    "no_images_error",
    "read_header",
    "scan_folder",
    "series_info",
    "sop_class_name",
    "summarise",
]

log = logging.getLogger(__name__)

#: Segmentation Storage: DICOM-SEG objects hold labels drawn on a series, not a series to read.
SEGMENTATION_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
#: what pydicom raises for values it cannot parse (unknown VR, wrong length, bad numbers).
HEADER_ERRORS = (
    ValueError,
    TypeError,
    AttributeError,
    KeyError,
    IndexError,
    ArithmeticError,
    NotImplementedError,
    struct.error,
)
#: attributes discovery and geometry use, parsed when the header is read (see :func:`read_header`).
_READ_ATTRIBUTES = (
    "SOPClassUID",
    "SeriesInstanceUID",
    "SeriesNumber",
    "SeriesDescription",
    "Modality",
    "SOPInstanceUID",
    "Rows",
    "Columns",
    "NumberOfFrames",
    "SamplesPerPixel",
    "BitsAllocated",
    "BitsStored",
    "PixelRepresentation",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "PixelSpacing",
    "ImagerPixelSpacing",
    "RescaleSlope",
    "RescaleIntercept",
    "InstanceNumber",
    "SpacingBetweenSlices",
    "GridFrameOffsetVector",
)
# Projection radiography has no patient-based geometry: each file is one 2D image.
PROJECTION_MODALITIES = {"DX", "CR", "MG", "XA", "RF", "PX", "IO"}


@dataclass(frozen=True)
class SeriesInfo:
    """One image series found in a folder, zip or file (what ``medswin info`` lists)."""

    uid: str
    number: int | None
    description: str
    modality: str
    num_frames: int
    shape: tuple[int, ...]
    files: tuple[str, ...] = field(repr=False, default=())
    #: (column, row[, slice]) spacing in mm from the first header: PixelSpacing, then the
    #: SpacingBetweenSlices or SliceThickness; ``None`` when the header does not say.
    spacing: tuple[float, ...] | None = None


# ----------------------------------------------------------------- discovery
def _damaged(path: Path, error: BaseException, strict: bool, keyword: str | None = None) -> None:
    detail = f"{type(error).__name__}: {' '.join(str(error).split())[:300]}"
    problem = f"{path}: damaged DICOM file ({f'{keyword} unreadable, ' if keyword else ''}{detail})"
    if strict:
        raise ImageReadError(problem) from error
    log.warning("skipping %s", problem)


def read_header(path: Path, *, strict: bool = False) -> Any | None:
    """Header of ``path`` if it is a DICOM file, else ``None`` (README files, .DS_Store, NIfTI...).

    A file that claims to be DICOM (the ``DICM`` preamble) but does not parse is skipped with a
    warning naming it, or, with ``strict``, refused with :class:`ImageReadError`.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except InvalidDicomError:
        if path.suffix.lower() != ".dcm":
            return None
        try:  # a .dcm without the 128-byte preamble (old ACR-NEMA style)
            ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        except Exception:
            return None
        if "SOPClassUID" not in ds and "Rows" not in ds:
            return None
    except OSError as error:
        log.debug("skipping %s: %s", path, error)
        return None
    except Exception as error:  # pydicom on untrusted bytes raises many types; all mean "damaged"
        return _damaged(path, error, strict)
    for (
        keyword
    ) in _READ_ATTRIBUTES:  # pydicom parses values lazily: a damaged one fails here, not deep inside
        try:
            ds.get(keyword)
        except Exception as error:
            return _damaged(path, error, strict, keyword)
    remember_identifiers(ds)  # before anything logs this file's path or description
    return ds


def _iter_candidate_files(folder: Path) -> Iterable[Path]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__MACOSX")
        for name in sorted(files):
            if name.startswith(".") or name.upper() == "DICOMDIR":
                continue
            yield Path(root) / name


def is_image(ds: Any) -> bool:
    return "Rows" in ds and "Columns" in ds and str(ds.get("SOPClassUID", "")) != SEGMENTATION_SOP_CLASS


def sop_class_name(ds: Any) -> str:
    uid = ds.get("SOPClassUID")
    if uid is None:
        return "unknown SOP class"
    name = getattr(uid, "name", str(uid))
    return str(name)


def scan_folder(folder: Path) -> tuple[dict[str, list[tuple[Path, Any]]], Counter[str], int]:
    """Group the image headers under ``folder`` by SeriesInstanceUID.

    Returns ``(series uid -> [(path, header)], non-image SOP class counts, number of non-DICOM files)``.
    """
    series: dict[str, list[tuple[Path, Any]]] = defaultdict(list)
    non_images: Counter[str] = Counter()
    other = 0
    damaged: list[ImageReadError] = []
    for path in _iter_candidate_files(folder):
        try:
            ds = read_header(path, strict=True)
        except ImageReadError as error:  # skipped beside readable images, reported when it is all there is
            log.warning("skipping %s", error)
            damaged.append(error)
            continue
        if ds is None:
            other += 1
            continue
        if not is_image(ds):
            non_images[sop_class_name(ds)] += 1
            continue
        uid = str(ds.get("SeriesInstanceUID", "")) or f"no-series-uid:{path.parent}"
        series[uid].append((path, ds))
    if damaged and not series:
        raise ImageReadError(
            f"{folder}: no readable DICOM image; {len(damaged)} damaged DICOM file(s), the first: {damaged[0]}"
        )
    return dict(series), non_images, other


def no_images_error(where: Path, non_images: Counter[str], other: int) -> ImageReadError:
    if non_images:
        kinds = ", ".join(f"{count} {name}" for name, count in non_images.most_common())
        return ImageReadError(
            f"{where}: holds DICOM objects but no images ({kinds}); point medswin at the image series "
            "(CT, MR, ...) rather than reports or presentation states"
        )
    hint = f" ({other} other files)" if other else " (the folder is empty)"
    return ImageReadError(f"{where}: no DICOM files found{hint}; pass a DICOM folder/zip or an image file")


def series_info(uid: str, members: list[tuple[Path, Any]]) -> SeriesInfo:
    first_path, first = members[0]
    frames = sum(frame_count(path, ds) for path, ds in members)
    number = whole_number(first.get("SeriesNumber"))
    modality = str(first.get("Modality", ""))
    projection = frames == 1 and ("ImagePositionPatient" not in first or modality in PROJECTION_MODALITIES)
    columns, rows = pixel_count(first_path, first, "Columns"), pixel_count(first_path, first, "Rows")
    shape = (columns, rows) if projection else (columns, rows, frames)
    return SeriesInfo(
        uid=uid,
        number=number,
        description=str(first.get("SeriesDescription", "")),
        modality=modality,
        num_frames=frames,
        shape=shape,
        files=tuple(str(p) for p, _ in members),
        spacing=_header_spacing(members, projection),
    )


def _header_spacing(members: list[tuple[Path, Any]], projection: bool) -> tuple[float, ...] | None:
    """(column, row[, slice]) mm from the headers, for an overview (the reader checks the real grid).

    The slice value is the median step between single-frame slice positions along the slice normal,
    else SpacingBetweenSlices, else SliceThickness.
    """
    first = members[0][1]
    try:
        pixel = header_floats(first.get("PixelSpacing") or first.get("ImagerPixelSpacing"))
        if pixel is None or len(pixel) != 2:
            return None
        plane = (pixel[1], pixel[0])  # PixelSpacing is (row, column) spacing
        if projection:
            return plane
        orientation = header_floats(first.get("ImageOrientationPatient"))
        positions = [header_floats(ds.get("ImagePositionPatient")) for _, ds in members]
        if orientation is not None and len(orientation) == 6 and len(members) > 1 and all(positions):
            normal = np.cross(orientation[:3], orientation[3:])
            along = np.sort([float(np.dot(normal, p)) for p in positions])
            steps = np.diff(along)
            steps = steps[steps > 1e-6]
            if steps.size:
                return (*plane, round(float(np.median(steps)), 4))
        step = header_floats(first.get("SpacingBetweenSlices") or first.get("SliceThickness"))
        return (*plane, step[0]) if step else None
    except HEADER_ERRORS:
        return None


def summarise(series: dict[str, list[tuple[Path, Any]]]) -> list[SeriesInfo]:
    """:class:`SeriesInfo` of each series, largest first (then by SeriesNumber)."""
    infos = [series_info(uid, members) for uid, members in series.items()]
    return sorted(infos, key=lambda s: (-s.num_frames, s.number if s.number is not None else 1 << 30, s.uid))


def discover_series(folder: Path) -> list[SeriesInfo]:
    """All image series under ``folder``, largest first; raises when there is none."""
    series, non_images, other = scan_folder(folder)
    if not series:
        raise no_images_error(folder, non_images, other)
    return summarise(series)
