"""Build a datalist from a folder of images and labels (``medswin manifest FOLDER``).

Three layouts are recognised (``layout="auto"`` picks the first that fits):

* ``nnunet``: ``imagesTr/`` + ``labelsTr/`` (+ ``imagesTs/``), as nnU-Net v2 and the Medical
  Segmentation Decathlon store data. Channel files ``<case>_0000.nii.gz``, ``<case>_0001...`` are
  grouped into one case; MSD files without a channel suffix are one case each (a 4D file holds its
  channels itself). Labels are ``labelsTr/<case>.<ext>``.
* ``pairs``: ``images/`` + ``labels/`` (or ``masks/``, ``segmentations/``): one image per case and
  a label of the same name (or with ``_seg`` / ``_label`` / ``_mask`` appended).
* ``case-folders``: one sub-folder per case holding its channel files and one label file whose
  name ends in ``seg`` / ``label`` / ``mask`` (BraTS: ``<case>-t1c.nii.gz`` ... ``<case>-seg.nii.gz``).
  The text after the case name is the channel name.

Every file must exist, and (unless ``check_geometry=False``) every channel and its label must
share one grid; problems raise :class:`~medswin.errors.ManifestError` naming the case and files.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medswin.data.manifest import (
    CaseEntry,
    DatasetInfo,
    check_case_geometry,
    load_dataset_info,
    parse_datalist,
    validate_document,
)
from medswin.errors import ManifestError
from medswin.io.formats import LABEL_NAME_SUFFIXES, case_name, dataset_case_id, file_format, split_channel

__all__ = ["LAYOUTS", "assign_folds", "build_manifest", "detect_layout", "scan_folder"]

log = logging.getLogger(__name__)

LAYOUTS = ("auto", "nnunet", "pairs", "case-folders")
_LABEL_FOLDERS = ("labels", "masks", "segmentations", "labelsTr")
_CASE_FOLDER_LABEL = re.compile(r"(?:^|[_\-.])(seg|segmentation|label|labels|mask)$", re.IGNORECASE)


def _image_files(folder: Path) -> list[Path]:
    """Image files (and DICOM sub-folders) directly in ``folder``, sorted; hidden files skipped."""
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_file() and file_format(path) is not None:
            found.append(path)
    return found


def detect_layout(folder: Path) -> str:
    """The layout name of ``folder`` (see the module docstring); ManifestError if none fits."""
    if (folder / "imagesTr").is_dir():
        return "nnunet"
    if (folder / "images").is_dir() and any((folder / name).is_dir() for name in _LABEL_FOLDERS):
        return "pairs"
    subfolders = (
        [p for p in sorted(folder.iterdir()) if p.is_dir() and not p.name.startswith(".")]
        if folder.is_dir()
        else []
    )
    if subfolders and any(_case_folder_label(p) is not None for p in subfolders):
        return "case-folders"
    raise ManifestError(
        f"{folder}: no known layout; expected imagesTr/ + labelsTr/ (nnU-Net / MSD), images/ + labels/ "
        "(pairs of the same name), or one sub-folder per case with channel files and a *_seg label"
    )


# ------------------------------------------------------------------------------ layouts
def _group_channel_files(files: list[Path], where: Path) -> dict[str, list[Path]]:
    """``{case: [channel files in order]}`` for nnU-Net names, or one file per case for MSD names."""
    stems = [case_name(p) for p in files]
    matches = [split_channel(s) for s in stems]
    if files and all(matches):
        grouped: dict[str, dict[int, Path]] = {}
        for path, match in zip(files, matches, strict=True):
            case, channel = match
            grouped.setdefault(case, {})[channel] = path
        expected = list(range(max(max(v) for v in grouped.values()) + 1))
        cases: dict[str, list[Path]] = {}
        for case, channels in sorted(grouped.items()):
            if sorted(channels) != expected:
                raise ManifestError(
                    f"{where}: case {case!r} has channel files {[f'_{c:04d}' for c in sorted(channels)]}; every case "
                    f"needs the same channels _0000.._{expected[-1]:04d}"
                )
            cases[case] = [channels[c] for c in range(len(channels))]
        return cases
    if any(matches):
        odd = [p.name for p, m in zip(files, matches, strict=True) if not m][:3]
        raise ManifestError(
            f"{where}: some image names end in a channel number (_0000) and others do not ({', '.join(odd)}); "
            "use one naming scheme"
        )
    return {s: [p] for s, p in zip(stems, files, strict=True)}


def _scan_nnunet(folder: Path) -> tuple[list[CaseEntry], list[CaseEntry]]:
    images = _group_channel_files(_image_files(folder / "imagesTr"), folder / "imagesTr")
    if not images:
        raise ManifestError(f"{folder / 'imagesTr'}: no image files")
    labels = {case_name(p): p for p in _image_files(folder / "labelsTr")}
    missing = [case for case in images if case not in labels]
    if missing:
        raise ManifestError(
            f"{folder}: {len(missing)} training case(s) have no label in labelsTr/ "
            f"(e.g. {', '.join(missing[:3])}: expected labelsTr/{missing[0]}<ext>)"
        )
    orphans = sorted(set(labels) - set(images))
    if orphans:
        raise ManifestError(f"{folder}: label(s) without an image in imagesTr/: {', '.join(orphans[:5])}")
    training = [CaseEntry(case, tuple(files), labels[case]) for case, files in images.items()]
    test_images = _group_channel_files(_image_files(folder / "imagesTs"), folder / "imagesTs")
    test = [CaseEntry(case, tuple(files)) for case, files in test_images.items()]
    return training, test


def _pair_label(image: Path, labels: dict[str, Path]) -> Path | None:
    stem = case_name(image)
    for candidate in (stem, *(stem + s for s in LABEL_NAME_SUFFIXES)):
        if candidate in labels:
            return labels[candidate]
    return None


def _scan_pairs(folder: Path) -> tuple[list[CaseEntry], list[CaseEntry]]:
    label_folder = next(folder / n for n in _LABEL_FOLDERS if (folder / n).is_dir())
    labels = {case_name(p): p for p in _image_files(label_folder)}
    training: list[CaseEntry] = []
    unmatched: list[str] = []
    used: set[Path] = set()
    for image in _image_files(folder / "images"):
        label = _pair_label(image, labels)
        if label is None:
            unmatched.append(image.name)
            continue
        used.add(label)
        training.append(CaseEntry(dataset_case_id(image), (image,), label))
    if unmatched:
        raise ManifestError(
            f"{folder}: {len(unmatched)} image(s) in images/ have no label of the same name in {label_folder.name}/ "
            f"(e.g. {', '.join(unmatched[:3])})"
        )
    orphans = sorted(p.name for p in labels.values() if p not in used)
    if orphans:
        raise ManifestError(f"{folder}: label(s) without an image in images/: {', '.join(orphans[:5])}")
    if not training:
        raise ManifestError(f"{folder / 'images'}: no image files")
    return training, []


def _case_folder_label(case_folder: Path) -> Path | None:
    found = [p for p in _image_files(case_folder) if _CASE_FOLDER_LABEL.search(case_name(p))]
    if len(found) > 1:
        raise ManifestError(
            f"{case_folder}: several label files ({', '.join(p.name for p in found)}); keep one"
        )
    return found[0] if found else None


def _channel_name(case: str, path: Path) -> str:
    stem = case_name(path)
    rest = stem[len(case) :] if stem.startswith(case) else stem
    return rest.lstrip("_-.") or stem


def _scan_case_folders(
    folder: Path, channels: Sequence[str] | None
) -> tuple[list[CaseEntry], list[CaseEntry]]:
    training: list[CaseEntry] = []
    test: list[CaseEntry] = []
    reference_channels: list[str] | None = list(channels) if channels else None
    for case_folder in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        case = case_folder.name
        label = _case_folder_label(case_folder)
        files = {_channel_name(case, p): p for p in _image_files(case_folder) if p != label}
        if not files:
            raise ManifestError(f"{case_folder}: no image files")
        if reference_channels is None:
            reference_channels = sorted(files)
        if set(files) != set(reference_channels):
            raise ManifestError(
                f"{case_folder}: channel files {sorted(files)} differ from the expected channels {reference_channels} "
                "(names are the text after the case name, e.g. <case>-t1c.nii.gz -> t1c)"
            )
        entry = CaseEntry(case, tuple(files[c] for c in reference_channels), label)
        (training if label is not None else test).append(entry)
    if not training:
        raise ManifestError(f"{folder}: no case folder holds a label file (*_seg, *-seg, *_label, *_mask)")
    return training, test


def scan_folder(
    folder: str | Path, layout: str = "auto", channels: Sequence[str] | None = None
) -> tuple[str, list[CaseEntry], list[CaseEntry]]:
    """``(layout, training cases, test cases)`` found in ``folder`` (paths absolute)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ManifestError(f"{folder}: no such folder")
    if layout not in LAYOUTS:
        raise ManifestError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    if layout == "auto":
        layout = detect_layout(folder)
    if layout == "nnunet":
        training, test = _scan_nnunet(folder)
    elif layout == "pairs":
        training, test = _scan_pairs(folder)
    else:
        training, test = _scan_case_folders(folder, channels)
    return layout, training, test


# ------------------------------------------------------------------------------ folds / manifest
def assign_folds(case_ids: Sequence[str], folds: int, seed: int = 0) -> dict[str, int]:
    """Case -> fold in ``0..folds-1``: a seeded shuffle dealt round-robin (fold sizes differ by at most one)."""
    if folds < 2:
        raise ManifestError(f"folds must be at least 2 to split cases, got {folds}")
    if folds > len(case_ids):
        raise ManifestError(f"{folds} folds asked for but only {len(case_ids)} training case(s)")
    import numpy as np  # here: ``medswin manifest --help`` reads LAYOUTS from this module

    order = np.random.default_rng(seed).permutation(len(case_ids))
    return {case_ids[index]: position % folds for position, index in enumerate(order)}


def _relative(path: Path, folder: Path) -> str:
    try:
        return path.relative_to(folder).as_posix()
    except ValueError:
        return str(path)


def build_manifest(
    folder: str | Path,
    *,
    folds: int = 5,
    seed: int = 0,
    layout: str = "auto",
    channels: Sequence[str] | None = None,
    check_geometry: bool = True,
) -> dict[str, Any]:
    """A datalist document (JSON-ready dict) for the cases in ``folder``; paths relative to it.

    Args:
        folder: the dataset folder (see the module docstring for the layouts).
        folds: cross-validation folds written as each training case's ``fold`` (0 or 1: none).
        seed: seed of the fold assignment.
        layout: ``"auto"``, ``"nnunet"``, ``"pairs"`` or ``"case-folders"``.
        channels: channel order for case folders (default: alphabetical channel names), or the
            channel names when ``folder/dataset.json`` does not give them.
        check_geometry: read every case and check that channels and labels share one grid.

    A ``dataset.json`` in ``folder`` (MSD or nnU-Net) contributes name, channel names, labels,
    regions and licence, and its channel count is checked against the files.
    """
    folder = Path(folder)
    found_layout, training, test = scan_folder(folder, layout, channels)
    info: DatasetInfo | None = None
    if (folder / "dataset.json").is_file():
        info = load_dataset_info(folder / "dataset.json")
    expected = len(info.channels) if info is not None else (len(channels) if channels else None)
    if check_geometry:
        values: set[int] = set()
        for entry in (*training, *test):
            count, present = check_case_geometry(entry, expected)
            expected = count if expected is None else expected
            values.update(present)
        if info is not None:
            undeclared = sorted(values - set(info.labels))
            if undeclared:
                raise ManifestError(
                    f"{folder}: label value(s) {undeclared} occur in the label files but {folder / 'dataset.json'} "
                    f"declares only {sorted(info.labels)}"
                )
        log.info(
            "%s: %d training and %d test case(s) checked; label values %s",
            folder,
            len(training),
            len(test),
            sorted(values),
        )
    fold_of = assign_folds([e.case_id for e in training], folds, seed) if folds > 1 else {}

    def item(entry: CaseEntry) -> dict[str, Any]:
        images = [_relative(p, folder) for p in entry.images]
        data: dict[str, Any] = {"case": entry.case_id, "image": images[0] if len(images) == 1 else images}
        if entry.label is not None:
            data["label"] = _relative(entry.label, folder)
        if entry.case_id in fold_of:
            data["fold"] = fold_of[entry.case_id]
        return data

    document: dict[str, Any] = dict(info.to_dict()) if info is not None else {"name": folder.name}
    if info is None and channels:
        document["modality"] = {str(i): name for i, name in enumerate(channels)}
    document["description"] = (
        (document.get("description", "") + " ").lstrip()
        + f"Datalist built by 'medswin manifest' from the {found_layout} layout; paths are relative to the dataset folder."
    )
    if fold_of:
        document["numFolds"] = folds
    document["training"] = [item(e) for e in training]
    if test:
        document["test"] = [item(e) for e in test]
    validate_document(document, "datalist", f"datalist built from {folder}")
    parse_datalist(document, folder, source=f"datalist built from {folder}").check_files()
    return document
