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
from medswin.io.dicom_seg import is_dicom_seg, read_dicom_seg
from medswin.io.image import Image
from medswin.io.readers import detect_format, read_image
from napari_medswin._layers import LayerDataTuple, image_to_layer_data
from napari_medswin._orientation import install_current

__all__ = [
    "PREFERRED_PATTERNS",
    "napari_get_reader",
    "prefer_medswin_reader",
    "layer_name",
    "problem_first",
    "read_series_layer",
    "read_layers",
    "looks_like_labels",
]

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


def _folder_is_empty(folder: Path) -> bool:
    """True when ``folder`` holds no file at any depth (hidden files aside)."""
    return not any(name for _, _, files in os.walk(folder) for name in files if not name.startswith("."))


def _readable(path: Path) -> bool:
    if path.is_dir():
        # an empty folder is claimed too: medswin then says it is empty, where napari's own
        # folder reader would fail with a message about subdirectories
        return _folder_has_dicom(path) or _folder_is_empty(path)
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


def problem_first(message: str, path: str) -> str:
    """``"<path>: <problem>"`` (medswin's log style) -> ``"<Problem> (<path>)"``: a toast is read from the left.

    Messages that do not start with the path are returned unchanged.
    """
    for prefix in (f"{path}: ", f"{Path(path)}: "):
        if message.startswith(prefix):
            problem = message[len(prefix) :].strip()
            return f"{problem[:1].upper()}{problem[1:]} ({path})"
    return message


#: filename patterns (napari ``extension2reader`` keys) that :func:`prefer_medswin_reader` claims;
#: ``*`` + separator is napari's pattern for folders (medswin claims DICOM and empty folders only).
PREFERRED_PATTERNS: tuple[str, ...] = (
    "*.dcm",
    "*.nii",
    "*.nii.gz",
    "*.nrrd",
    "*.nhdr",
    "*.mha",
    "*.mhd",
    "*" + os.sep,
)


def prefer_medswin_reader() -> dict[str, str]:
    """Make medswin the reader napari picks for DICOM files and folders, NIfTI, NRRD and MetaImage.

    napari has no reader priority in plugin manifests: when two plugins can read a path it asks
    (or uses ``settings.plugins.extension2reader``, Preferences > Plugins). This sets that preference
    for :data:`PREFERRED_PATTERNS`; patterns the user already gave to another reader keep it.
    A folder without DICOM files is declined: napari then shows its reader choice with the others.

    Returns:
        the patterns now read by medswin -> ``"medswin"``.
    """
    from napari.settings import get_settings
    from napari.utils.notifications import show_info

    plugins = get_settings().plugins
    preferences = dict(plugins.extension2reader)
    claimed = {}
    for pattern in PREFERRED_PATTERNS:
        if preferences.get(pattern, "medswin") == "medswin":
            preferences[pattern] = "medswin"
            claimed[pattern] = "medswin"
    plugins.extension2reader = preferences
    kept = sorted(set(PREFERRED_PATTERNS) - set(claimed))
    show_info(
        "medswin now opens "
        + ", ".join(claimed)
        + (f"; kept your choice for {', '.join(kept)}" if kept else "")
        + " (Preferences > Plugins changes it)"
    )
    return claimed


def layer_name(image: Image) -> str:
    """A DICOM series is named by its SeriesDescription (then the folder/file), other files by their file name."""
    path = str(image.meta.get("path") or "").replace("\\", "/").rstrip("/")
    source = path.rsplit("/", 1)[-1] or image.kind
    description = str((image.meta.get("dicom") or {}).get("SeriesDescription", "")).strip()
    named = description and image.meta.get("format") in ("dicom", "dicom-seg")
    return f"{description} ({source})" if named else source


def read_series_layer(path: str, series_uid: str) -> LayerDataTuple:
    """One series of a DICOM folder or zip (by SeriesInstanceUID) as an image layer named by its description."""
    try:
        image = read_image(path, series_uid=series_uid)
    except ImageReadError as error:
        raise ImageReadError(problem_first(str(error), path)) from error
    return image_to_layer_data(image, layer_name(image))


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

    DICOM folders and zips holding several series open their largest series, named by its
    SeriesDescription; *Plugins > medswin > Series* lists them all and opens the others.
    """
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    install_current()  # the viewer these layers go to shows them anatomically (3D camera, edge letters)
    layers: list[LayerDataTuple] = []
    for item in paths:
        if Path(item).is_dir() and _folder_is_empty(Path(item)):
            raise ImageReadError(f"Nothing to open: the folder is empty ({item})")
        if Path(item).is_file() and is_dicom_seg(item):  # labels drawn on a series, not a series
            try:
                labels, names = read_dicom_seg(item)
            except ImageReadError as error:
                raise ImageReadError(problem_first(str(error), str(item))) from error
            layers.append(image_to_layer_data(labels, layer_name(labels), label_names=names))
            continue
        try:
            image = read_image(item)
        except ImageReadError as error:
            raise ImageReadError(problem_first(str(error), str(item))) from error
        if image.num_channels == 1 and looks_like_labels(image.array, str(item)):
            image = image.with_array(image.array, kind="label")
        log.info("opened %s", image)
        layers.append(image_to_layer_data(image, layer_name(image)))
    return layers
