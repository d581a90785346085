"""The output writer registry: every label output medswin can write, described once.

``medswin predict --output-format``, ``medswin listen``, the batch runner (which files a case owns,
which formats a record holds, what a rerun still has to write, what goes to a PACS) and napari's
save dialog all read :data:`WRITERS`, so a writer registered here is available everywhere. Cheap to
import (standard library only): the CLI parsers list the names before anything heavy loads.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medswin.io.image import Image

__all__ = [
    "LabelSet",
    "OutputWriter",
    "WRITERS",
    "register_writer",
    "dicom_source_problem",
    "safe_name",
]

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class LabelSet:
    """What every writer is given: a label map, what its values mean and the image it belongs to.

    Attributes:
        labels: label map ``(1, X, Y, Z)``, on ``source``'s grid when there is a source.
        source: the input the labels were made on (its grid, and for DICOM inputs the source files
            the DICOM outputs reference); None for a source without a volume grid (a radiograph pair).
        names: label value -> name, every non-zero value the writer may meet.
        colors: label value -> RGB 0..255 (the model card's), or None.
        algorithm: the model's id, named in DICOM outputs.
        series_description, content_description: what a PACS viewer shows beside a DICOM output.
        deidentify_key: write DICOM outputs de-identified, pseudonyms under this key.
    """

    labels: Image
    source: Image | None
    names: Mapping[int, str]
    colors: Mapping[int, RGB] | None = None
    algorithm: str = "medswin"
    series_description: str = "medswin segmentation"
    content_description: str | None = None
    deidentify_key: bytes | None = None


@dataclass(frozen=True)
class OutputWriter:
    """One output format.

    Attributes:
        name: the ``--output-format`` value.
        suffix: what follows the case id in the file name (``".nii.gz"``); ``{label}`` in it makes one
            file per label present (``"_mesh_{label}.stl"``), named by :func:`safe_name`.
        title: a few words for help texts and napari's save dialog.
        needs_dicom_source: written against the DICOM files the input was read from.
        sendable: a DICOM object a PACS stores (``--send-to``).
        writer: ``writer(labels, targets) -> written paths``; ``targets`` maps each label value to its
            file for a per-label writer, else holds one entry, key 0.
    """

    name: str
    suffix: str
    title: str
    writer: Callable[[LabelSet, Mapping[int, Path]], list[Path]]
    needs_dicom_source: bool = False
    sendable: bool = False

    @property
    def per_label(self) -> bool:
        return "{label}" in self.suffix

    def targets(self, output_dir: Path, case_id: str, names: Mapping[int, str]) -> dict[int, Path]:
        """Label value (0 for a one-file writer) -> the file this writer may write for the case."""
        if not self.per_label:
            return {0: output_dir / f"{case_id}{self.suffix}"}
        labels = unique_names(names)
        return {v: output_dir / f"{case_id}{self.suffix.format(label=labels[v])}" for v in sorted(labels)}

    def files(self, case_id: str, names: Mapping[int, str]) -> list[str]:
        """Every file name this writer may write for ``case_id`` (one per named label for a per-label writer)."""
        return [p.name for p in self.targets(Path(), case_id, names).values()]

    def write(self, labels: LabelSet, output_dir: Path, case_id: str) -> list[Path]:
        """Write the case's files atomically; returns those written (a per-label writer: labels present).

        Raises :class:`~medswin.errors.ImageWriteError` naming the file, with the one
        :func:`dicom_source_problem` message when a DICOM writer has no DICOM source.
        """
        from medswin.errors import ImageWriteError

        targets = self.targets(Path(output_dir), case_id, labels.names)
        if self.needs_dicom_source:
            problem = dicom_source_problem(labels.source)
            if problem is not None:
                raise ImageWriteError(f"{next(iter(targets.values()))}: {problem}")
        return self.writer(labels, targets)


#: name -> writer, in the order ``--output-format`` lists them.
WRITERS: dict[str, OutputWriter] = {}


def register_writer(writer: OutputWriter) -> OutputWriter:
    """Add ``writer`` to :data:`WRITERS` (a name is registered once)."""
    if writer.name in WRITERS:
        raise ValueError(f"output writer {writer.name!r} is registered twice")
    WRITERS[writer.name] = writer
    return writer


def dicom_source_problem(image: Any) -> str | None:
    """Why ``image`` cannot be the source of a DICOM output (DICOM-SEG, RTSTRUCT), or None when it can.

    One sentence for every front end (predict, listen, napari): the problem first, then what to do.
    """
    dicom_names = " and ".join(w.title for w in WRITERS.values() if w.needs_dicom_source) or "DICOM outputs"
    meta = getattr(image, "meta", None)
    if not isinstance(meta, dict) or meta.get("format") != "dicom" or not meta.get("source_files"):
        fmt = meta.get("format") if isinstance(meta, dict) else None
        where = meta.get("path") if isinstance(meta, dict) and meta.get("path") else "the image"
        what = f"is a {fmt} image, not a DICOM series" if fmt else "has no DICOM source files"
        return f"{where} {what}; {dicom_names} can only be written for a DICOM input: choose nifti or mha instead"
    if meta.get("dicom", {}).get("interpolated_onto_regular_grid"):
        return (
            f"{meta.get('path', 'the series')} was interpolated onto a regular grid (allow gaps), so its "
            f"slices are not its DICOM images; {dicom_names} can only be written for a DICOM input read "
            "as it is: choose nifti or mha instead"
        )
    return None


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str) -> str:
    """A label name as part of a file name: letters, digits, ``._-``; the rest becomes ``_``."""
    return _UNSAFE.sub("_", str(name)).strip("._") or "label"


def unique_names(names: Mapping[int, str]) -> dict[int, str]:
    """Label value -> :func:`safe_name`, the value appended where two names would collide."""
    safe = {int(v): safe_name(n) for v, n in names.items() if int(v) != 0}
    counts: dict[str, int] = {}
    for name in safe.values():
        counts[name] = counts.get(name, 0) + 1
    return {v: (n if counts[n] == 1 else f"{n}_{v}") for v, n in safe.items()}
