"""Checks shared by the challenge validators: one problem per line, named by case.

A validator collects :class:`Problem` entries instead of stopping at the first, so a team sees
everything a portal would reject in one pass.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medswin.errors import MedSwinError
from medswin.io.image import Image

__all__ = [
    "Problem",
    "ValidationReport",
    "submission_folder",
    "check_label_image",
    "read_submitted_labels",
    "write_submission_zip",
    "HIDDEN_NAMES",
]

#: archive clutter the portals ignore (and so do the validators).
HIDDEN_NAMES = ("__MACOSX", ".DS_Store")


@dataclass(frozen=True)
class Problem:
    """One reason a portal would reject the submission: the case (or file) and what is wrong."""

    case: str
    message: str

    def __str__(self) -> str:
        return f"{self.case}: {self.message}"


@dataclass
class ValidationReport:
    """What a validator checked and found."""

    challenge: str
    checked: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, case: str, message: str) -> None:
        self.problems.append(Problem(case, message))

    def summary(self) -> str:
        head = f"{self.challenge}: {len(self.checked)} case(s) checked, {len(self.problems)} problem(s)"
        return "\n".join([head, *(f"  {p}" for p in self.problems)])


def _is_hidden(name: str) -> bool:
    parts = Path(name).parts
    return any(p.startswith(".") or p in HIDDEN_NAMES for p in parts) or Path(name).name.startswith("._")


@contextmanager
def submission_folder(path: str | Path) -> Iterator[tuple[Path, list[str]]]:
    """``(folder, visible file names)`` of a submission folder or zip (extracted safely to a temp dir)."""
    from medswin.io.archive import extracted_zip

    path = Path(path)
    if not path.exists():
        raise MedSwinError(f"{path}: no such submission folder or zip")
    if path.is_dir():
        names = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())
        yield path, [n for n in names if not _is_hidden(n)]
        return
    if not zipfile.is_zipfile(path):
        raise MedSwinError(f"{path}: a submission is a folder or a .zip")
    with extracted_zip(path) as folder:
        names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        yield folder, [n for n in names if not _is_hidden(n)]


def read_submitted_labels(report: ValidationReport, case: str, path: Path) -> tuple[Image, np.dtype] | None:
    """``(image with the stored voxel values, stored NIfTI dtype)``, or None with a problem added."""
    import nibabel as nib

    from medswin.io import read_image

    try:
        stored = np.dtype(nib.load(str(path)).get_data_dtype())
        return read_image(path), stored
    except Exception as error:  # any unreadable file is a problem to report, not a crash
        report.add(case, f"unreadable ({error})")
        return None


def check_label_image(
    report: ValidationReport,
    case: str,
    labels: Image,
    allowed: Iterable[int],
    *,
    stored_dtype: np.dtype,
    reference: Image | None = None,
    dtypes: tuple[type, ...] = (np.uint8,),
) -> None:
    """Add problems for a label file's stored type, values and grid (against ``reference`` when given)."""
    array = np.asarray(labels.array)
    if stored_dtype.type not in dtypes:
        expected = " or ".join(np.dtype(t).name for t in dtypes)
        report.add(case, f"voxel type {stored_dtype} (expected {expected})")
    if not np.issubdtype(array.dtype, np.integer) and np.any(array != np.round(array)):
        report.add(case, "non-integer label values")
        return
    found = {int(v) for v in np.unique(array)}
    unknown = sorted(found - set(allowed))
    if unknown:
        report.add(case, f"label value(s) {unknown} outside the allowed {sorted(set(allowed))}")
    if reference is not None:
        difference = labels.grid_difference(reference)
        if difference is not None:
            report.add(case, f"not on the input image's grid ({difference})")


def write_submission_zip(target: Path, members: Mapping[str, Path]) -> Path:
    """Write ``target`` (atomically) holding each file of ``members`` under its archive name, uncompressed
    (NIfTI files are gzip-compressed already)."""
    from medswin.files import atomic_output

    with (
        atomic_output(target) as temporary,
        zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_STORED) as archive,
    ):
        for name, path in sorted(members.items()):
            archive.write(path, arcname=name)
    return target
