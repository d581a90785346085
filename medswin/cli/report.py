"""``medswin report OUT_DIR``: one self-contained ``OUT_DIR/report.html`` of a batch, failed cases first."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run"]

DESCRIPTION = """\
Write OUT_DIR/report.html: every case medswin predict (or x2s predict --datalist) recorded in OUT_DIR,
quality verdict fail first, then cases that did not run, warn and ok, each with a small preview
(<case>_preview.png when written with --preview, else a front view of its labels), its volumes against
the model card's plausible ranges, and every quality check with its reason. The overview table sorts
by verdict and by each structure's volume. One file with everything inline: it opens offline, without
a server. Exit code: 0 written, 2 no case records in OUT_DIR.
"""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report",
        help="an HTML page of a batch's cases and their quality verdicts, failed first",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("folder", type=Path, metavar="OUT_DIR", help="output folder of medswin predict")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="where to write the page (default: OUT_DIR/report.html)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from medswin.batch.report import collect_cases, write_report

    cases = collect_cases(args.folder)
    path = write_report(args.folder, args.output, cases)
    counts = {v: sum(c.verdict == v for c in cases) for v in ("fail", "error", "warn", "ok")}
    shown = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
    print(f"wrote {path}: {len(cases)} case(s), {shown}")
    return 0
