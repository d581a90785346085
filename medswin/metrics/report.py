"""Metric tables on disk: a tidy CSV (one row per case and label) and a summary JSON, written atomically.

Both files are written with :func:`medswin.files.write_atomic` (a temporary file in the destination
folder, then ``os.replace``), so a crash never leaves a half-written table and an existing file is
only replaced by a complete one.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from medswin.files import write_atomic
from medswin.metrics.evaluate import BRATS_COLUMNS, CaseResult
from medswin.metrics.multilabel import METRIC_COLUMNS

__all__ = [
    "CSV_COLUMNS",
    "csv_text",
    "summary_path_for",
    "write_metrics_csv",
    "write_summary_json",
]

#: columns of the metrics CSV, in order (BraTS runs append :data:`~medswin.metrics.evaluate.BRATS_COLUMNS`).
CSV_COLUMNS: tuple[str, ...] = ("case", "label", "empty", *METRIC_COLUMNS, "nsd_tolerance_mm")


def _cell(value: Any) -> str:
    if value is None:
        return ""  # not applicable
    if isinstance(value, float):
        return format(value, ".10g") if math.isfinite(value) else str(value)
    return str(value)


def csv_text(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A CSV table of ``rows`` in ``columns`` order: floats to 10 significant digits, missing cells blank."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({column: _cell(row.get(column)) for column in columns})
    return buffer.getvalue()


def write_metrics_csv(results: Iterable[CaseResult], path: str | Path) -> Path:
    """Write one row per evaluated case and label; failed cases have no rows (see the summary).

    Columns: :data:`CSV_COLUMNS`, plus the BraTS columns when any row has them. Distances in mm,
    volumes in mL, ``empty`` is "both", "pred", "ref" or "" (see :mod:`medswin.metrics.surface`).
    """
    rows = [{"case": result.case, **row} for result in results if result.ok for row in result.rows]
    columns = list(CSV_COLUMNS)
    if any("lesion_dice" in row for row in rows):
        columns += list(BRATS_COLUMNS)
    return write_atomic(path, csv_text(rows, columns))


def _json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def write_summary_json(summary: Mapping[str, Any], path: str | Path) -> Path:
    """Write the output of :func:`~medswin.metrics.evaluate.summarize` as strict JSON.

    Non-finite numbers become ``null`` (their count is in each statistic's ``n_nonfinite``).
    """
    return write_atomic(path, json.dumps(_json_safe(summary), indent=2) + "\n")


def summary_path_for(csv_path: str | Path) -> Path:
    """Where the summary JSON of a metrics CSV goes: ``metrics.csv`` -> ``metrics_summary.json``."""
    csv_path = Path(csv_path)
    return csv_path.with_name(f"{csv_path.stem}_summary.json")
