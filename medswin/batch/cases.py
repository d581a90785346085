"""Turn what a user points ``medswin predict -i`` at into named cases, and read one case.

Accepted inputs (each case named by its file or folder name without the image extension):

* one image file, DICOM file or DICOM ``.zip`` -> one case;
* several paths given together -> the channels of one case, in the model card's order;
* a folder of image files (NIfTI, MHA/MHD, NRRD, DICOM zips) -> one case per file; files named
  nnU-Net style (``<case>_0000.nii.gz``, ``<case>_0001.nii.gz`` ...) are grouped into one
  multi-channel case;
* a folder of DICOM studies -> one case per sub-folder, and one per series where a folder holds
  several (``<folder>_s<SeriesNumber>``); DICOM files lying in the folder itself count as a study;
* a ``.txt`` list (one case per line: its channel paths separated by commas) or a ``.csv`` with a
  ``case`` column and one column per channel; relative paths are taken from the list's folder;
* a PACS query, ``dicomweb:URL?keys`` or ``dimse://AE@host:port?keys`` -> one case per series of the
  model's modality in the matching studies, named ``<StudyInstanceUID>_s<SeriesNumber>``; its
  instances are retrieved into the batch's work area when the case is read (:mod:`medswin.pacs`).

Discovery reads DICOM headers only (no pixels); a case's voxels are read by :func:`read_case`.
"""

from __future__ import annotations

import contextlib
import csv
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from medswin.errors import ImageReadError, MedSwinError
from medswin.io.formats import LIST_ENDINGS, case_name, endings, split_channel
from medswin.io.image import Image

__all__ = ["Case", "discover_cases", "read_case", "case_scratch"]

log = logging.getLogger(__name__)

#: files that are cases by themselves in an input folder (2D pictures are cases only when named).
_VOLUME_SUFFIXES = endings("volume", "archive")


@dataclass(frozen=True)
class Case:
    """One prediction job: an id for the outputs, and what to read.

    Attributes:
        case_id: output name (``<case_id>.nii.gz``); unique within a batch.
        paths: one path per channel, in the model card's channel order.
        series_uid: the SeriesInstanceUID to read when ``paths[0]`` holds several DICOM series.
        remote: a :class:`~medswin.pacs.series.RemoteSeries` to retrieve before reading (``paths`` empty).
    """

    case_id: str
    paths: tuple[Path, ...]
    series_uid: str | None = None
    remote: Any = None

    @property
    def source(self) -> str:
        """Where the case comes from, for messages (the first path, plus the series when chosen)."""
        if self.remote is not None:
            return str(self.remote)
        where = str(self.paths[0])
        return f"{where} (series {self.series_uid})" if self.series_uid else where


def _is_dicom_file(path: Path) -> bool:
    try:
        with open(path, "rb") as stream:
            return stream.read(132)[128:132] == b"DICM"
    except OSError:
        return False


def _has_suffix(path: Path, suffixes: Sequence[str]) -> bool:
    return path.name.lower().endswith(tuple(suffixes))


def _dicom_cases(folder: Path, name: str) -> list[Case]:
    """One case per image series under ``folder``; several series get ``_s<number>`` suffixes."""
    from medswin.io.dicom_series import discover_series

    series = discover_series(folder)
    if len(series) == 1:
        return [Case(name, (folder,), None)]
    numbers = [s.number for s in series]
    unique = None not in numbers and len(set(numbers)) == len(numbers)
    return [
        Case(f"{name}_s{s.number}" if unique else f"{name}_{s.uid}", (folder,), s.uid)
        for s in sorted(series, key=lambda s: (s.number is None, s.number or 0, s.uid))
    ]


def _group_channels(files: list[Path]) -> list[Case]:
    """nnU-Net naming (``<case>_0000``...) groups files into multi-channel cases; else one case per file."""
    matches = [split_channel(case_name(f)) for f in files]
    if not files or not all(matches):
        return [Case(case_name(f), (f,)) for f in files]
    grouped: dict[str, dict[int, Path]] = defaultdict(dict)
    for path, match in zip(files, matches, strict=True):
        assert match is not None
        case, channel = match
        grouped[case][channel] = path
    # Every case gets as many channels as the widest one; a missing channel file stays in the case
    # under the name it should have, so that case fails when read (naming it), not the whole batch.
    width = max(max(channels) for channels in grouped.values()) + 1
    cases = []
    for case_id, channels in sorted(grouped.items()):
        sample = next(iter(channels.values()))
        ending = sample.name[len(case_name(sample)) :]
        paths = tuple(channels.get(c, sample.parent / f"{case_id}_{c:04d}{ending}") for c in range(width))
        cases.append(Case(case_id, paths))
    return cases


def _followable(path: Path) -> Path | None:
    """``path`` resolved, or None (with a warning) for a link that loops or points nowhere."""
    try:
        return path.resolve(strict=True)
    except RuntimeError:  # Python < 3.13 reports a symbolic link loop this way
        log.warning("%s: skipped, a symbolic link loop", path)
    except OSError as error:
        log.warning("%s: skipped, cannot follow it (%s)", path, error.strerror or error)
    return None


def _folder_entries(folder: Path, skip: Iterable[Path]) -> list[Path]:
    """The folder's entries that may be cases: not hidden, not skipped, links that lead somewhere."""
    skipped = set()
    for path in skip:  # e.g. an output folder not made yet; a looping one is refused by the batch
        with contextlib.suppress(RuntimeError, OSError):
            skipped.add(path.resolve())
    entries = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.name == "__MACOSX":
            continue
        resolved = _followable(path)
        if resolved is not None and resolved not in skipped:
            entries.append(path)
    return entries


def _folder_cases(folder: Path, skip: Iterable[Path]) -> list[Case]:
    entries = _folder_entries(folder, skip)
    images = [p for p in entries if p.is_file() and _has_suffix(p, _VOLUME_SUFFIXES)]
    loose_dicom = [p for p in entries if p.is_file() and p not in images and _is_dicom_file(p)]
    studies = [p for p in entries if p.is_dir()]
    ignored = [p.name for p in entries if p.is_file() and p not in images and p not in loose_dicom]
    if ignored:
        log.info("%s: not images, ignored: %s", folder, ", ".join(ignored[:10]))
    if loose_dicom and not images and not studies:
        return _dicom_cases(folder, folder.name)  # the folder is one DICOM study itself
    if loose_dicom:
        raise ImageReadError(
            f"{folder}: holds DICOM files beside other cases ({loose_dicom[0].name}); put each DICOM study "
            "in a sub-folder of its own"
        )
    cases = _group_channels(images)
    for study in studies:
        try:
            cases.extend(_dicom_cases(study, study.name))
        except ImageReadError as error:
            # A study folder without readable DICOM is a failed case, reported with the batch.
            cases.append(Case(study.name, (study,)))
            log.debug("%s", error)
    return sorted(cases, key=lambda c: c.case_id)


def _list_cases(path: Path) -> list[Case]:
    """Cases from a ``.txt`` (channel paths per line, comma separated) or ``.csv`` (``case`` + channels)."""

    def resolve(text: str) -> Path:
        candidate = Path(text.strip()).expanduser()
        return candidate if candidate.is_absolute() else path.parent / candidate

    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise ImageReadError(f"{path}: cannot read the case list ({error})") from error
    cases = []
    if path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
        columns = [c for c in (rows[0].keys() if rows else []) if c and c.strip().lower() != "case"]
        if not rows or not columns:
            raise ImageReadError(
                f"{path}: a case list CSV needs a header with image column(s), e.g. case,image"
            )
        for number, row in enumerate(rows, start=2):
            paths = tuple(resolve(row[c]) for c in columns if (row.get(c) or "").strip())
            if len(paths) != len(columns):
                raise ImageReadError(
                    f"{path}, line {number}: {len(paths)} of {len(columns)} image columns filled"
                )
            cases.append(Case((row.get("case") or "").strip() or case_name(paths[0]), paths))
    else:
        for line in text.splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                paths = tuple(resolve(p) for p in line.split(",") if p.strip())
                cases.append(Case(case_name(paths[0]), paths))
    if not cases:
        raise ImageReadError(f"{path}: the case list names no case")
    return cases


def _pacs_cases(address: str, modality: str, pacs: Any) -> list[Case]:
    """One case per series of ``modality`` that the query in ``address`` matches."""
    from medswin.pacs.series import connect, find_series

    cases = []
    for remote in find_series(connect(address, pacs), modality):
        found = remote.found
        suffix = f"s{found.number}" if found.number is not None else found.series_uid
        cases.append(Case(f"{found.study_uid}_{suffix}", (), found.series_uid, remote))
    numbered = [c.case_id for c in cases]
    if len(set(numbered)) != len(numbered):  # two series share a number: name them by their UIDs
        cases = [replace(c, case_id=f"{c.remote.found.study_uid}_{c.series_uid}") for c in cases]
    return cases


def discover_cases(
    inputs: Sequence[str | Path],
    *,
    skip: Iterable[Path] = (),
    modality: str = "CT",
    pacs: Any = None,
) -> list[Case]:
    """The cases named by ``-i`` arguments (see the module docstring), in a stable order.

    Args:
        inputs: one path (file, folder or case list) or PACS query, or several paths that are one
            case's channels.
        skip: folders never to read as cases (the output folder, when it lies inside the input).
        modality: the model's modality: a PACS query yields that modality's series only.
        pacs: :class:`~medswin.pacs.base.PacsSettings` for a PACS query (default: AE title MEDSWIN,
            credentials from the environment).

    Raises:
        ImageReadError: a path does not exist, a folder holds no case, or two cases share an id.
        PacsError: the PACS cannot be queried, or the query matches no series of ``modality``.
    """
    from medswin.pacs.nodes import is_pacs_address

    if len(inputs) == 1 and is_pacs_address(str(inputs[0])):
        return _pacs_cases(str(inputs[0]), modality, pacs)
    paths = [Path(p).expanduser() for p in inputs]
    for path in paths:
        if not path.exists():
            raise ImageReadError(f"{path}: no such file or folder")
    if not paths:
        raise MedSwinError("no input given")
    if len(paths) > 1:
        cases = [Case(case_name(paths[0]), tuple(paths))]
    elif paths[0].is_file() and _has_suffix(paths[0], LIST_ENDINGS):
        cases = _list_cases(paths[0])
    elif paths[0].is_dir():
        cases = _folder_cases(paths[0], skip)
        if not cases:
            raise ImageReadError(
                f"{paths[0]}: no case found (image files {', '.join(_VOLUME_SUFFIXES)}, DICOM files or "
                "DICOM study folders)"
            )
    else:
        cases = [Case(case_name(paths[0]), (paths[0],))]
    seen: dict[str, Case] = {}
    for case in cases:
        if case.case_id in seen:
            raise ImageReadError(
                f"two cases would write {case.case_id!r}: {seen[case.case_id].source} and {case.source}; "
                "rename one"
            )
        seen[case.case_id] = case
    return cases


def case_scratch(scratch: Path, case_id: str) -> Path:
    """The folder inside a batch's work area where one case's retrieved files live until it is written."""
    return scratch / "cases" / case_id


def read_case(case: Case, *, allow_gaps: bool = False, scratch: Path | None = None) -> Image:
    """Read one case: a single image, or one image per channel stacked in the case's order.

    Channel images must lie on one grid; raises :class:`GeometryError` naming the odd one out.
    ``scratch``: where DICOM zips are extracted while read (a batch's work area; see ``read_image``).
    """
    from medswin.io import read_image
    from medswin.io.geometry import stack_channels
    from medswin.io.readers import require_finite

    if case.remote is not None:
        if scratch is None:
            raise ImageReadError(f"{case.source}: a PACS case needs a work folder to retrieve into")
        folder = case.remote.retrieve(case_scratch(scratch, case.case_id))
        return require_finite(read_image(folder, series_uid=case.series_uid, allow_gaps=allow_gaps), folder)
    missing = [(index, path) for index, path in enumerate(case.paths) if not Path(path).exists()]
    if missing and len(case.paths) > 1:
        index, path = missing[0]
        raise ImageReadError(
            f"{path}: no such file; channel {index} of case {case.case_id!r} is missing "
            f"({len(case.paths) - len(missing)} of {len(case.paths)} channel files found)"
        )
    images = [
        require_finite(read_image(p, series_uid=case.series_uid, allow_gaps=allow_gaps, scratch=scratch), p)
        for p in case.paths
    ]
    return stack_channels(images, case.paths)
