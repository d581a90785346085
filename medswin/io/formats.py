"""File formats and case names: the one table of image file endings medswin knows.

Every place that asks "is this an image file?", "can I write this?" or "which case is this file?"
asks this module, so ``medswin predict``, ``medswin evaluate``, ``medswin manifest``, the readers and
the writers agree on every name (``c1.mhd`` is case ``c1`` everywhere; ``c1_0000.nii.gz`` is channel
0 of case ``c1`` wherever channels are grouped). Pure standard library: the CLI parsers import it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = [
    "FORMATS",
    "FileFormat",
    "FormatKind",
    "LABEL_NAME_SUFFIXES",
    "LIST_ENDINGS",
    "case_name",
    "dataset_case_id",
    "endings",
    "file_format",
    "format_ending",
    "split_channel",
]

#: ``volume``: 3D/4D files with geometry (NIfTI, MetaImage, NRRD); ``dicom``: a DICOM file (a folder
#: of them is a series); ``archive``: a zip of DICOM; ``raster``: 2D pictures (radiographs, photos).
FormatKind = Literal["volume", "dicom", "archive", "raster"]


@dataclass(frozen=True)
class FileFormat:
    """One file ending and what medswin does with it.

    Attributes:
        ending: lower-case ending including the dot (``".nii.gz"``).
        kind: see :data:`FormatKind`.
        writable: :func:`medswin.io.writers.write_image` can write it (label outputs: :mod:`medswin.io.outputs`).
    """

    ending: str
    kind: FormatKind
    writable: bool


#: every ending :func:`medswin.io.readers.read_image` reads, longest first where one ends another.
FORMATS: tuple[FileFormat, ...] = (
    FileFormat(".nii.gz", "volume", writable=True),
    FileFormat(".nii", "volume", writable=True),
    FileFormat(".mha", "volume", writable=True),
    FileFormat(".mhd", "volume", writable=True),
    FileFormat(".nrrd", "volume", writable=True),
    FileFormat(".nhdr", "volume", writable=False),
    FileFormat(".dcm", "dicom", writable=False),
    FileFormat(".zip", "archive", writable=False),
    FileFormat(".png", "raster", writable=False),
    FileFormat(".tiff", "raster", writable=False),
    FileFormat(".tif", "raster", writable=False),
    FileFormat(".jpg", "raster", writable=False),
    FileFormat(".jpeg", "raster", writable=False),
    FileFormat(".bmp", "raster", writable=False),
)

#: case lists (one case per line or CSV row) that ``medswin predict -i`` accepts.
LIST_ENDINGS: tuple[str, ...] = (".txt", ".csv")

#: label file name endings that are not part of the case name (``case_seg.nii.gz`` -> ``case``).
LABEL_NAME_SUFFIXES: tuple[str, ...] = (
    "_segmentation",
    "-segmentation",
    "_seg",
    "-seg",
    "_label",
    "-label",
    "_mask",
    "-mask",
)

_CHANNEL = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")


def endings(*kinds: FormatKind, writable: bool | None = None) -> tuple[str, ...]:
    """Endings of the given kinds (all kinds when none is named), optionally only the writable ones."""
    return tuple(
        f.ending
        for f in FORMATS
        if (not kinds or f.kind in kinds) and (writable is None or f.writable == writable)
    )


def file_format(path: str | Path) -> FileFormat | None:
    """The format of a file by its name (case-insensitive), or None when medswin does not read it.

    A name that is only an ending (``.nii.gz``) has no format: it is a hidden file, not an image.
    """
    name = Path(path).name
    lowered = name.lower()
    for candidate in FORMATS:
        if lowered.endswith(candidate.ending) and len(name) > len(candidate.ending):
            return candidate
    return None


def format_ending(path: str | Path) -> str:
    """The known ending of ``path`` (``".nii.gz"``), else its last suffix in lower case (``""`` if none)."""
    known = file_format(path)
    return known.ending if known else Path(path).suffix.lower()


def case_name(path: str | Path) -> str:
    """The case name of an input: its file (or folder) name without a known image ending.

    ``case_001.nii.gz`` -> ``case_001``, ``scan.v2.MHA`` -> ``scan.v2``, ``series_dir`` -> ``series_dir``.
    nnU-Net channel suffixes stay (``c1_0000``): whether ``_0000`` is a channel depends on the other
    files beside it (:func:`split_channel`).
    """
    name = Path(path).name
    known = file_format(name)
    return name[: -len(known.ending)] if known else name


def split_channel(name: str) -> tuple[str, int] | None:
    """``("c1", 0)`` for an nnU-Net channel file name without ending (``c1_0000``), else None."""
    match = _CHANNEL.match(name)
    return (match["case"], int(match["channel"])) if match else None


def dataset_case_id(path: str | Path) -> str:
    """The case a dataset file belongs to: ending, nnU-Net channel and label suffix removed.

    ``c1_0000.nii.gz`` -> ``c1``, ``c1_seg.nii.gz`` -> ``c1``, ``c1.mhd`` -> ``c1`` (datalists pair
    images and labels by it).
    """
    name = case_name(path)
    channel = split_channel(name)
    if channel:
        name = channel[0]
    lowered = name.lower()
    for suffix in LABEL_NAME_SUFFIXES:
        if lowered.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name
