"""Qt-free quality verdict for the panels: the case verdict's text, each structure's check, and the
cases of an output folder for the Review dock.

The verdict shown is the one the predictor computed (:attr:`Prediction.quality`) or a batch recorded
(``<case>.json``), kept with the labels layer in its metadata, so what the panel says, the CSV
holds and ``report.html`` shows are the same checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medswin.errors import MedSwinError
from medswin.qc.core import Check, QualityReport, worst
from napari_medswin._layers import METADATA_KEY

__all__ = [
    "QC_METADATA_KEY",
    "VERDICT_COLORS",
    "CaseRow",
    "case_label_file",
    "case_images",
    "layer_quality",
    "quality_metadata",
    "review_rows",
    "structure_quality",
    "verdict_html",
]

#: key of the quality report (``QualityReport.to_dict()``) in a labels layer's medswin metadata
QC_METADATA_KEY = "qc"
#: verdict -> colour of its word in the panels (the report.html badges' colours)
VERDICT_COLORS = {"ok": "#2e7d32", "warn": "#ef8f00", "fail": "#c62828", "error": "#6a1b9a"}
#: label map endings a batch writes, in the order the Review dock prefers them
_LABEL_ENDINGS = (".nii.gz", ".mha", ".nii", ".nrrd")
#: check kinds that judge one structure (``<kind>:<structure>``); fit checks judge the whole image
_STRUCTURE_KINDS = ("volume", "sides", "pieces", "edge", "confidence", "agreement")


def quality_metadata(prediction: Any) -> dict[str, Any]:
    """``{"qc": report}`` for a layer's medswin metadata; empty for a prediction without checks."""
    quality = getattr(prediction, "quality", None)
    return {QC_METADATA_KEY: quality.to_dict()} if isinstance(quality, QualityReport) else {}


def layer_quality(metadata: Mapping[str, Any]) -> QualityReport | None:
    """The quality report kept with a labels layer (None for labels no medswin model predicted)."""
    recorded = (metadata.get(METADATA_KEY) or {}).get(QC_METADATA_KEY)
    return QualityReport.from_dict(recorded) if isinstance(recorded, Mapping) else None


def structure_quality(quality: QualityReport, name: str) -> tuple[str, str]:
    """``(verdict, reason)`` of the checks of one structure: the worst one and the reasons of its
    flagged checks, joined ("" when all are ok; ``("", "")`` when no check names the structure)."""
    checks: list[Check] = [
        c for c in quality.checks if c.name.partition(":")[::2] in {(k, name) for k in _STRUCTURE_KINDS}
    ]
    if not checks:
        return "", ""
    verdict = worst(c.verdict for c in checks)
    reasons = [c.reason for c in QualityReport(tuple(checks)).flagged()]
    return verdict, " ".join(reasons)


def verdict_html(quality: QualityReport | None, subject: str) -> str:
    """The panel's verdict: ``QC <verdict>`` in its colour, then each flagged check's reason (rich text)."""
    import html

    if quality is None:
        return ""
    if not quality.checks:
        return f"QC of {html.escape(subject)}: no checks were run."
    colour = VERDICT_COLORS[quality.verdict]
    head = f'QC of {html.escape(subject)}: <b style="color:{colour}">{quality.verdict}</b>'
    flagged = quality.flagged()
    if not flagged:
        return head + f" ({len(quality.checks)} checks passed)"
    items = "".join(
        f'<li><span style="color:{VERDICT_COLORS[c.verdict]}">{c.verdict}</span> '
        f"{html.escape(c.name)}: {html.escape(c.reason)}</li>"
        for c in flagged
    )
    return f"{head}<ul style='margin:0'>{items}</ul>"


@dataclass(frozen=True)
class CaseRow:
    """One case of an output folder as the Review dock lists it (verdict ``error``: the case did not run)."""

    case: str
    verdict: str
    reason: str
    model: str

    def as_row(self) -> dict[str, Any]:
        shown = "did not run" if self.verdict == "error" else self.verdict
        return {"case": self.case, "verdict": shown, "reason": self.reason, "model": self.model}


def review_rows(folder: str | Path) -> list[CaseRow]:
    """The cases of a ``medswin predict`` output folder, fail first, then cases that did not run, warn, ok.

    Read from the records (:func:`medswin.batch.outputs.read_record`) as ``medswin report`` reads them.

    Raises:
        MedSwinError: the folder is missing or holds no case record.
    """
    from medswin.batch.report import collect_cases

    return [CaseRow(c.case_id, c.verdict, c.reason, c.model) for c in collect_cases(folder, thumbnails=False)]


def case_label_file(folder: str | Path, case: str) -> Path:
    """The label map a batch wrote for ``case`` (``<case>.nii.gz``, else ``.mha``/``.nii``/``.nrrd``)."""
    from medswin.batch.outputs import read_record

    folder = Path(folder)
    record = read_record(folder, case)
    if record is None:
        raise MedSwinError(f"no finished record for case {case!r} ({folder / (case + '.json')})")
    for ending in _LABEL_ENDINGS:
        name = case + ending
        if name in record.get("files", {}) and (folder / name).is_file():
            return folder / name
    raise MedSwinError(
        f"no label map for case {case!r}: none of {', '.join(case + e for e in _LABEL_ENDINGS)} "
        f"is in {folder} (DICOM-SEG only? open it with File > Open)"
    )


def case_images(folder: str | Path, case: str, images: str | Path | None) -> list[Path]:
    """The input files of ``case`` that its record names, found in the ``images`` folder.

    Records keep input names only (never the paths), and none when case names hide their source.

    Raises:
        MedSwinError: the record names no input, no images folder is chosen, or a named input is not in it.
    """
    from medswin.batch.outputs import read_record

    record = read_record(Path(folder), case) or {}
    names = [str(n) for n in record.get("inputs") or [] if str(n)]
    if not names:
        raise MedSwinError(
            f"the image of case {case!r} is not named in its record (case names hide their source): "
            "open it with File > Open"
        )
    if images is None or not str(images) or not Path(images).is_dir():
        raise MedSwinError(
            f"choose the folder of the inputs to open the image of case {case!r} ({', '.join(names)})"
        )
    found = []
    for name in names:
        path = Path(images) / name
        if not path.exists():
            matches = sorted(Path(images).rglob(name))
            if not matches:
                raise MedSwinError(f"input not found: {name} (case {case!r}) is not in {images}")
            path = matches[0]
        found.append(path)
    return found
