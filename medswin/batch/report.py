"""``report.html``: every case of an output folder in one self-contained page, the ones to look at first.

The page reads what a batch recorded (each ``<case>.json`` and its ``qc`` block, ``summary.csv``
for cases that failed to run) and needs nothing else to open: CSS and the sorting script are
inline, previews are small JPEG thumbnails inlined as data URIs (from ``<case>_preview.png``, or a
projection of the label map when no preview was written), so 100 cases stay well under 2 MB and
the file opens offline, from a USB stick or an e-mail.

Order: ``fail``, cases that did not run, ``warn``, ``ok``; the overview table sorts by verdict and
by each structure's volume (click a column), and each case's section lists its volumes against
their plausible ranges and every check with its reason.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medswin.errors import MedSwinError
from medswin.qc.core import VERDICTS, QualityReport

__all__ = ["CaseSummary", "collect_cases", "render_report", "write_report", "THUMBNAIL_WIDTH"]

log = logging.getLogger(__name__)

#: thumbnail width in pixels (JPEG): a preview's three planes stay readable, 100 cases stay < 2 MB.
THUMBNAIL_WIDTH = 360
_ORDER = {"fail": 0, "error": 1, "warn": 2, "ok": 3}
_LABEL_ENDINGS = (".nii.gz", ".mha", ".nii", ".nrrd")


@dataclass
class CaseSummary:
    """One case as the report shows it.

    Attributes:
        case_id: the case's name in the folder.
        verdict: ``ok``, ``warn``, ``fail``, or ``error`` for a case that did not run.
        reason: the first check with that verdict (or why the case did not run).
        volumes: structure -> volume in mL (the record's ``labels``).
        quality: the recorded checks.
        model: the model card's id.
        thumbnail: JPEG bytes, or None.
    """

    case_id: str
    verdict: str
    reason: str
    volumes: dict[str, float] = field(default_factory=dict)
    quality: QualityReport = field(default_factory=QualityReport)
    model: str = ""
    thumbnail: bytes | None = None

    @property
    def rank(self) -> int:
        return _ORDER.get(self.verdict, 0)


def _jpeg(image: Any) -> bytes:
    """A PIL image as a JPEG thumbnail ``THUMBNAIL_WIDTH`` wide."""
    image = image.convert("RGB")
    if image.width > THUMBNAIL_WIDTH:
        height = max(1, round(image.height * THUMBNAIL_WIDTH / image.width))
        image = image.resize((THUMBNAIL_WIDTH, height))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=65, optimize=True)
    return buffer.getvalue()


def _label_projection(path: Path, colors: dict[int, tuple[int, int, int]]) -> bytes | None:
    """A coronal projection of a label map (front view, patient's right on the left), coloured."""
    from PIL import Image as PILImage

    from medswin.io import read_image
    from medswin.io.geometry import reorient

    labels = reorient(read_image(path, kind="label"), "LAS")
    array = np.asarray(labels.array[0])
    if array.ndim != 3 or not array.any():
        return None
    # the front-most label along each ray (LAS: axis 1 runs to anterior, so look from its high end)
    front = np.flip(array, axis=1)
    first = np.argmax(front > 0, axis=1)
    shown = np.take_along_axis(front, first[:, None, :], axis=1)[:, 0, :]  # (X, Z)
    rgb = np.full((*shown.shape, 3), 24, dtype=np.uint8)
    for value in np.unique(shown):
        if value:
            rgb[shown == value] = colors.get(int(value), (230, 80, 80))
    picture = np.flip(np.transpose(rgb, (1, 0, 2)), axis=0)  # rows from head (top) to feet
    sx, _, sz = labels.spacing
    image = PILImage.fromarray(np.ascontiguousarray(picture))
    return _jpeg(image.resize((max(1, round(image.width * sx)), max(1, round(image.height * sz)))))


def _thumbnail(folder: Path, case_id: str, record: dict[str, Any]) -> bytes | None:
    from PIL import Image as PILImage

    preview = folder / f"{case_id}_preview.png"
    try:
        if preview.is_file():
            with PILImage.open(preview) as image:
                return _jpeg(image)
        for name in record.get("files", {}):
            if name.endswith(_LABEL_ENDINGS) and "_probabilities" not in name:
                return _label_projection(folder / name, _colors(record))
    except (OSError, ValueError, MedSwinError) as error:
        log.warning("case %s: no thumbnail (%s)", case_id, error)
    return None


def _colors(record: dict[str, Any]) -> dict[int, tuple[int, int, int]]:
    from medswin.io.anatomy import structure_colors

    names = {
        int(v["value"]): n
        for n, v in record.get("labels", {}).items()
        if isinstance(v, dict) and "value" in v
    }
    return structure_colors(names)


def _failed_runs(folder: Path, recorded: set[str]) -> list[CaseSummary]:
    """Cases ``summary.csv`` lists as failed that have no record (they did not run to the end)."""
    found = []
    for summary in sorted(folder.glob("summary*.csv")):
        try:
            with open(summary, newline="", encoding="utf-8") as stream:
                rows = list(csv.DictReader(stream))
        except (OSError, csv.Error, UnicodeDecodeError):
            continue
        for row in rows:
            case_id = row.get("case", "")
            if row.get("status") == "failed" and case_id and case_id not in recorded:
                recorded.add(case_id)
                found.append(CaseSummary(case_id, "error", row.get("reason") or "the case did not run"))
    return found


def collect_cases(folder: str | Path, *, thumbnails: bool = True) -> list[CaseSummary]:
    """Every case of a batch output folder, worst verdict first (then by name).

    Raises:
        MedSwinError: when the folder is missing or holds no case record.
    """
    from medswin.batch.outputs import read_record

    folder = Path(folder)
    if not folder.is_dir():
        raise MedSwinError(f"{folder}: no such output folder")
    cases = []
    for path in sorted(folder.glob("*.json")):
        case_id = path.name.removesuffix(".json")
        record = read_record(folder, case_id)
        if record is None:
            continue
        quality = QualityReport.from_dict(record.get("qc"))
        volumes = {
            name: float(v["volume_ml"])
            for name, v in record.get("labels", {}).items()
            if isinstance(v, dict) and isinstance(v.get("volume_ml"), (int, float))
        }
        cases.append(
            CaseSummary(
                case_id,
                quality.verdict,
                quality.reason,
                volumes,
                quality,
                str(record.get("model", "")),
                _thumbnail(folder, case_id, record) if thumbnails else None,
            )
        )
    cases += _failed_runs(folder, {c.case_id for c in cases})
    if not cases:
        raise MedSwinError(
            f"{folder}: holds no case records (<case>.json); run medswin predict into it first"
        )
    return sorted(cases, key=lambda c: (c.rank, c.case_id))


_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5em;color:#1d1d1f;background:#fafafa}
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.1em;margin:0}
p.meta{color:#555;margin:.2em 0 1em}
table{border-collapse:collapse;background:#fff}
th,td{border:1px solid #ddd;padding:.3em .55em;text-align:left;vertical-align:top;font-size:.9em}
th.sortable{cursor:pointer;user-select:none;background:#f0f0f3}th.sortable:hover{background:#e2e2ea}
th.sorted-asc::after{content:" \\25B2"}th.sorted-desc::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;min-width:3.2em;text-align:center;border-radius:.3em;padding:.05em .4em;font-weight:600;color:#fff}
.v-fail{background:#c62828}.v-error{background:#6a1b9a}.v-warn{background:#ef8f00}.v-ok{background:#2e7d32}
td.v-fail,td.v-warn,td.v-error{color:#fff}td.v-ok{background:none}
table.all td{font-size:.8em;padding:.1em .4em}
section.case{background:#fff;border:1px solid #ddd;border-left:.45em solid #2e7d32;margin:1em 0;padding:.8em 1em}
section.case.fail{border-left-color:#c62828}section.case.warn{border-left-color:#ef8f00}
section.case.error{border-left-color:#6a1b9a}
.row{display:flex;gap:1.2em;flex-wrap:wrap;align-items:flex-start;margin-top:.5em}
img.thumb{max-width:360px;border:1px solid #ccc;background:#000}
p.reason{margin:.35em 0 0}
ul.checks{margin:.3em 0;padding-left:1.2em}ul.checks li{margin:.15em 0}
details summary{cursor:pointer;color:#444;margin-top:.4em}
"""

_SCRIPT = """
(function(){
  const table=document.getElementById('overview');
  if(!table)return;
  const heads=table.tHead.rows[0].cells;
  Array.from(heads).forEach(function(th,col){
    if(!th.classList.contains('sortable'))return;
    th.addEventListener('click',function(){
      const asc=!th.classList.contains('sorted-asc');
      Array.from(heads).forEach(function(h){h.classList.remove('sorted-asc','sorted-desc');});
      th.classList.add(asc?'sorted-asc':'sorted-desc');
      const rows=Array.from(table.tBodies[0].rows);
      rows.sort(function(a,b){
        const x=a.cells[col].dataset.sort,y=b.cells[col].dataset.sort;
        const nx=parseFloat(x),ny=parseFloat(y);
        let d=(isNaN(nx)||isNaN(ny))?String(x).localeCompare(String(y)):nx-ny;
        if(isNaN(nx)&&!isNaN(ny))d=1;if(!isNaN(nx)&&isNaN(ny))d=-1;
        return asc?d:-d;
      });
      rows.forEach(function(r){table.tBodies[0].appendChild(r);});
    });
  });
})();
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _anchor(case_id: str) -> str:
    return "case-" + "".join(c if c.isalnum() or c in "-_" else "_" for c in case_id)


def _structure_checks(quality: QualityReport, name: str) -> list[Any]:
    return [c for c in quality.checks if c.name.split(":", 1)[-1] == name and ":" in c.name]


def _case_section(case: CaseSummary) -> str:
    parts = [f'<section class="case {_e(case.verdict)}" id="{_anchor(case.case_id)}">']
    parts.append(
        f'<h2><span class="badge v-{_e(case.verdict)}">{_e(case.verdict)}</span> {_e(case.case_id)}'
        + (f" <small>({_e(case.model)})</small>" if case.model else "")
        + "</h2>"
    )
    if case.reason:
        parts.append(f'<p class="reason">{_e(case.reason)}</p>')
    parts.append('<div class="row">')
    if case.thumbnail:
        data = base64.b64encode(case.thumbnail).decode("ascii")
        parts.append(
            f'<img class="thumb" alt="preview of {_e(case.case_id)}" src="data:image/jpeg;base64,{data}">'
        )
    if case.volumes:
        parts.append(
            "<table><thead><tr><th>structure</th><th>mL</th><th>plausible range</th><th>checks</th></tr></thead><tbody>"
        )
        for name, volume in case.volumes.items():
            checks = _structure_checks(case.quality, name)
            ranged = next((c for c in checks if c.name.startswith("volume:")), None)
            limit = ranged.limit if ranged is not None and isinstance(ranged.limit, list) else None
            shown = f"{limit[0]:g}–{limit[1]:g}" if limit else "—"
            verdict = max((c.verdict for c in checks), key=VERDICTS.index, default="ok")
            flagged = ", ".join(c.name.split(":")[0] for c in checks if c.verdict != "ok") or "ok"
            parts.append(
                f'<tr><td>{_e(name)}</td><td class="num">{volume:.1f}</td><td>{_e(shown)}</td>'
                f'<td class="v-{_e(verdict) if verdict != "ok" else ""}">{_e(flagged)}</td></tr>'
            )
        parts.append("</tbody></table>")
    parts.append("</div>")
    flagged = case.quality.flagged()
    if flagged:
        parts.append('<ul class="checks">')
        parts += [
            f'<li><span class="badge v-{_e(c.verdict)}">{_e(c.verdict)}</span> <code>{_e(c.name)}</code>: {_e(c.reason)}</li>'
            for c in flagged
        ]
        parts.append("</ul>")
    if case.quality.checks:  # compact: the flagged checks' sentences are listed above
        parts.append(
            f"<details><summary>all {len(case.quality.checks)} checks (value / limit)</summary>"
            '<table class="all"><tbody>'
        )
        for c in case.quality.checks:
            value = json.dumps(c.value) if c.value is not None else "—"
            limit = json.dumps(c.limit) if c.limit is not None else "—"
            parts.append(
                f'<tr><td>{_e(c.name)}</td><td class="v-{_e(c.verdict)}">{_e(c.verdict)}</td>'
                f"<td>{_e(value)}</td><td>{_e(limit)}</td></tr>"
            )
        parts.append("</tbody></table></details>")
    parts.append("</section>")
    return "\n".join(parts)


def render_report(cases: Sequence[CaseSummary], title: str) -> str:
    """The HTML page for ``cases`` (already in report order)."""
    structures = list(dict.fromkeys(name for case in cases for name in case.volumes))
    counts = {v: sum(c.verdict == v for c in cases) for v in ("fail", "error", "warn", "ok")}
    head = "".join(f'<th class="sortable" data-type="number">{_e(n)} mL</th>' for n in structures)
    rows = []
    for case in cases:
        cells = [
            f'<td data-sort="{_e(case.case_id)}"><a href="#{_anchor(case.case_id)}">{_e(case.case_id)}</a></td>',
            f'<td data-sort="{case.rank}"><span class="badge v-{_e(case.verdict)}">{_e(case.verdict)}</span></td>',
        ]
        for name in structures:
            volume = case.volumes.get(name)
            checks = _structure_checks(case.quality, name)
            verdict = max((c.verdict for c in checks), key=VERDICTS.index, default="ok")
            css = f" v-{verdict}" if verdict != "ok" else ""
            cells.append(
                f'<td class="num{css}" data-sort="{"" if volume is None else f"{volume:.4f}"}">'
                + ("" if volume is None else f"{volume:.1f}")
                + "</td>"
            )
        cells.append(f"<td>{_e(case.reason)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    summary = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>",
            f"<h1>{_e(title)}</h1>",
            f'<p class="meta">{len(cases)} case(s): {_e(summary)}. Failed first; click a column to sort. '
            "Volumes are in mL; a coloured cell is a structure with a flagged check.</p>",
            '<table id="overview"><thead><tr><th class="sortable">case</th><th class="sortable">verdict</th>'
            f"{head}<th>first reason</th></tr></thead><tbody>",
            *rows,
            "</tbody></table>",
            *(_case_section(c) for c in cases),
            f"<script>{_SCRIPT}</script>",
            "</body></html>",
        ]
    )


def write_report(
    folder: str | Path, output: str | Path | None = None, cases: Sequence[CaseSummary] | None = None
) -> Path:
    """Write ``folder/report.html`` (or ``output``) atomically; returns its path.

    ``cases``: what :func:`collect_cases` found in ``folder`` (collected here when not given).
    """
    from medswin.files import write_atomic

    folder = Path(folder)
    cases = collect_cases(folder) if cases is None else cases
    target = Path(output) if output is not None else folder / "report.html"
    return write_atomic(target, render_report(cases, f"medswin quality report: {folder.name}"))
