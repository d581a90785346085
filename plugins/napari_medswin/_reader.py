"""File > Open for NIfTI, NRRD, MetaImage and DICOM (file, folder or zip) through ``medswin.io``.

``napari_get_reader`` only decides whether a path looks like one of these formats; it never
raises (napari then tries other readers). Reading itself is :func:`medswin.io.read_image`, so
napari shows medswin's own error message (file and problem) when a file is broken.
"""

from __future__ import annotations

import logging
import os
import re
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from medswin.errors import ImageReadError
from medswin.io.readers import detect_format, read_image
from napari_medswin._layers import LayerDataTuple, image_to_layer_data

__all__ = ["napari_get_reader", "read_layers", "looks_like_labels"]

log = logging.getLogger(__name__)

ReaderFunction = Callable[[str | Sequence[str]], list[LayerDataTuple]]

_VOLUME_FORMATS = ("nifti", "itk", "dicom", "dicom-folder", "zip")
# how many files of a folder are opened to look for a DICOM header before giving up
_FOLDER_PROBE_FILES = 64
# file names that say "this is a segmentation" (nnU-Net/BraTS/MSD habits: _seg, labelsTr, mask, gt)
_LABEL_NAME = re.compile(r"(^|[^a-z])(seg|segmentation|label|labels|labelstr|mask|gt|annotation)([^a-z]|$)")
_MAX_LABEL_VALUES = 256


def _has_dicom_preamble(path: str) -> bool:
    try:
        with open(path, "rb") as stream:
            head = stream.read(132)
    except OSError:
        return False
    return head[128:132] == b"DICM"


def _folder_has_dicom(folder: Path) -> bool:
    """True when one of the first files found under ``folder`` carries a DICOM header."""
    probed = 0
    for root, _, files in os.walk(folder):
        for file in sorted(files):
            if _has_dicom_preamble(os.path.join(root, file)):
                return True
            probed += 1
            if probed >= _FOLDER_PROBE_FILES:
                return False
    return False


def _readable(path: Path) -> bool:
    if path.is_dir():
        return _folder_has_dicom(path)
    if path.suffix.lower() == ".zip":
        return zipfile.is_zipfile(path)
    try:
        return detect_format(path) in _VOLUME_FORMATS
    except ImageReadError:
        return False


def napari_get_reader(path: str | Sequence[str]) -> ReaderFunction | None:
    """The reader for ``path`` when it is a medical volume medswin reads, else ``None`` (never raises)."""
    if isinstance(path, list | tuple):
        if len(path) != 1:
            return None  # a stack of files is not one study; napari's own readers handle stacks
        path = path[0]
    try:
        return read_layers if _readable(Path(str(path))) else None
    except (OSError, ValueError):
        return None


def looks_like_labels(array: np.ndarray, path: str) -> bool:
    """True for integer volumes with few values whose file name says segmentation/label/mask."""
    name = Path(path.rstrip("/\\")).name.lower()
    if not _LABEL_NAME.search(name.replace(".nii.gz", "").rsplit(".", 1)[0]):
        return False
    if not np.issubdtype(array.dtype, np.integer) or array.size == 0 or array.min() < 0:
        return False
    return np.unique(array).size <= _MAX_LABEL_VALUES


def read_layers(path: str | Sequence[str]) -> list[LayerDataTuple]:
    """One layer per file: an image layer (CT/MR window), or a labels layer for segmentation files.

    DICOM folders and zips holding several series open their largest series (the others are
    listed in the log; ``medswin info`` shows them all).
    """
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    layers: list[LayerDataTuple] = []
    for item in paths:
        image = read_image(item)
        if image.num_channels == 1 and looks_like_labels(image.array, str(item)):
            image = image.with_array(image.array, kind="label")
        log.info("opened %s", image)
        layers.append(image_to_layer_data(image))
    return layers
