"""``medswin evaluate``: metrics of a folder of predictions against a folder of references (or of one file
against another).

Files are paired by case name, the file name without its image ending (:mod:`medswin.metrics.pairing`). Writes a
tidy CSV (one row per case and label, see :mod:`medswin.metrics.report`) and ``<csv
stem>_summary.json`` beside it. A reference without a prediction is a failed case (listed, never
dropped from the summary); a prediction without a reference is reported and skipped.

Exit codes: 0 all cases evaluated, 1 some cases failed, 2 usage error (bad option, no pairs).
"""

from __future__ import annotations

import argparse
import logging
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from medswin.errors import MedSwinError

__all__ = ["add_parser", "run"]

log = logging.getLogger(__name__)

DESCRIPTION = """\
Metrics of predicted label images against reference label images: two folders paired by case name
(the file name without .nii.gz/.nii/.mha/.mhd/.nrrd/.nhdr), or two files: Dice, IoU, sensitivity, precision, Hausdorff, HD95, ASSD,
mean surface distances, NSD (mm, voxel spacing honoured) and volumes (mL) per label; with --brats,
the BraTS regions WT/TC/ET with the challenge's lesion-wise Dice and HD95.

Writes the CSV (one row per case and label) and <name>_summary.json beside it. A label empty in
both images scores Dice 1 / distance 0; empty in one scores Dice 0 / the image diagonal (the
"empty" column says which). References without a prediction count as failed cases.

Exit codes: 0 all cases evaluated, 1 some cases failed, 2 usage error.
"""


def _labels(text: str) -> list[int]:
    try:
        labels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"labels must be comma-separated integers like 1,2,3, got {text!r}"
        ) from None
    if not labels or any(v <= 0 for v in labels):
        raise argparse.ArgumentTypeError(f"labels must be positive integers, got {text!r}")
    return labels


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of mm, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number of mm >= 0, got {text!r}")
    return value


def _jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--jobs takes a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"--jobs must be at least 1, got {value}")
    return value


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    from medswin.metrics.brats_settings import LESION_WISE_SETTINGS

    parser = subparsers.add_parser(
        "evaluate",
        help="metrics of predicted label images against references (Dice, HD95, ASSD, NSD, volumes, BraTS)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--pred",
        type=Path,
        required=True,
        metavar="PATH",
        help="folder of predicted label images, or one file",
    )
    parser.add_argument(
        "--gt", type=Path, required=True, metavar="PATH", help="folder of reference label images, or one file"
    )
    parser.add_argument(
        "-o", "--output", type=Path, required=True, metavar="CSV", help="metrics table to write"
    )
    parser.add_argument(
        "--labels",
        type=_labels,
        default=None,
        metavar="1,2,3",
        help="labels to evaluate; any other non-zero label is an error (default: every label present)",
    )
    parser.add_argument(
        "--nsd-tolerance",
        type=_positive,
        default=2.0,
        metavar="MM",
        help="surface Dice tolerance in mm (default 2)",
    )
    parser.add_argument(
        "--empty-distance",
        type=_positive,
        default=None,
        metavar="MM",
        help="distance reported when one mask of a label is empty (default: image diagonal; BraTS: 374)",
    )
    parser.add_argument(
        "--brats",
        nargs="?",
        const="BraTS-GLI-2023",
        default=None,
        choices=sorted(LESION_WISE_SETTINGS),
        metavar="CHALLENGE",
        help="BraTS regions WT/TC/ET with lesion-wise Dice/HD95; optional settings name "
        f"({', '.join(sorted(LESION_WISE_SETTINGS))}; default BraTS-GLI-2023)",
    )
    parser.add_argument(
        "--brats-rc", action="store_true", help="BraTS 2024: also evaluate label 4, resection cavity (RC)"
    )
    parser.add_argument(
        "-j", "--jobs", type=_jobs, default=1, metavar="N", help="cases evaluated in parallel (default 1)"
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS,
        help="no progress bar or summary table",
    )
    parser.set_defaults(run=run)
    return parser


def _evaluate_pair(
    case: str, pred_path: Path, ref_path: Path, args: argparse.Namespace, label_jobs: int | None
):
    from medswin.io.readers import read_image
    from medswin.metrics import CaseResult, evaluate_case
    from medswin.metrics.brats_settings import LESION_WISE_SETTINGS

    try:
        pred = read_image(pred_path, kind="label")
        ref = read_image(ref_path, kind="label")
        return evaluate_case(
            pred,
            ref,
            labels=args.labels,
            nsd_tolerance_mm=args.nsd_tolerance,
            empty_distance_mm=args.empty_distance,
            brats=args.brats is not None,
            brats_settings=LESION_WISE_SETTINGS[args.brats] if args.brats else None,
            include_rc=args.brats_rc,
            case=case,
            jobs=label_jobs,
        )
    except MedSwinError as error:
        return CaseResult.failed(case, error, str(pred_path), str(ref_path))
    except Exception as error:  # one unreadable case must not stop a batch; it is listed as failed
        log.debug("case %s failed", case, exc_info=True)
        return CaseResult.failed(case, f"{type(error).__name__}: {error}", str(pred_path), str(ref_path))


def _print_summary(summary: dict[str, Any]) -> None:
    print(f"{'label':>6} {'cases':>5} {'Dice':>7} {'HD95 mm':>9} {'NSD':>7} {'empty p/r/b':>12}")
    for label, entry in summary["labels"].items():
        metrics, empty = entry["metrics"], entry["empty"]
        print(
            f"{label:>6} {entry['n']:>5} {metrics['dice']['mean']:>7.4f} {metrics['hd95']['mean']:>9.3f} "
            f"{metrics['nsd']['mean']:>7.4f} {empty['pred']:>4}/{empty['ref']}/{empty['both']}"
        )


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from medswin.metrics import CaseResult, summarize, with_every_label
    from medswin.metrics.report import summary_path_for, write_metrics_csv, write_summary_json

    quiet = bool(getattr(args, "quiet", False))
    if args.brats_rc and args.brats is None:
        raise MedSwinError("--brats-rc needs --brats")
    if args.brats is not None and args.empty_distance is not None:
        raise MedSwinError("--empty-distance and --brats exclude each other: BraTS uses its 374 mm penalty")
    if args.brats is not None and args.labels is not None:
        raise MedSwinError("--labels and --brats exclude each other: BraTS evaluates its fixed regions")
    if args.output.suffix.lower() != ".csv":
        raise MedSwinError(f"{args.output}: the output must be a .csv file")
    from medswin.metrics.pairing import LABEL_ENDINGS, pair_cases

    pairing = pair_cases(args.pred, args.gt)
    if not pairing.pairs:
        raise MedSwinError(
            f"no case of {args.pred} matches one of {args.gt} (cases pair by file name without "
            f"{'/'.join(LABEL_ENDINGS)})"
        )
    if pairing.missing_references:
        print(
            f"medswin: {len(pairing.missing_references)} prediction(s) without a reference, skipped: "
            + ", ".join(pairing.missing_references),
            file=sys.stderr,
        )
    if pairing.missing_predictions:
        print(
            f"medswin: {len(pairing.missing_predictions)} reference(s) without a prediction, counted as failed: "
            + ", ".join(pairing.missing_predictions),
            file=sys.stderr,
        )

    label_jobs = None if args.jobs == 1 else 1  # parallel over cases, or over labels within one case
    results: list[CaseResult] = []
    columns = (TextColumn("evaluating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=quiet, transient=True, console=Console(stderr=True)) as progress:
        task = progress.add_task("cases", total=len(pairing.pairs))
        with ThreadPoolExecutor(max_workers=args.jobs, thread_name_prefix="medswin-evaluate") as pool:
            futures = [
                pool.submit(_evaluate_pair, case, pred, ref, args, label_jobs)
                for case, (pred, ref) in pairing.pairs.items()
            ]
            for future in futures:
                results.append(future.result())
                progress.advance(task)
    for case in pairing.missing_predictions:
        results.append(CaseResult.failed(case, "no prediction file for this reference", None, None))
    results = with_every_label(results, args.nsd_tolerance)

    summary = summarize(results)
    summary["unpaired_predictions"] = pairing.missing_references
    summary["settings"] = {
        "labels": args.labels,
        "nsd_tolerance_mm": args.nsd_tolerance,
        "empty_distance_mm": args.empty_distance,
        "brats": args.brats,
        "brats_rc": args.brats_rc,
        "surface_definitions": "MONAI 1.6.1 (edge voxels, per-direction linear percentile); "
        "BraTS legacy_hd95/lesion_hd95: DeepMind surface-distance (area-weighted surfels)",
    }
    csv_path = write_metrics_csv(results, args.output)
    json_path = write_summary_json(summary, summary_path_for(args.output))
    if not quiet:
        _print_summary(summary)
        print(f"wrote {csv_path} and {json_path}")
    for failure in summary["failed"]:
        print(f"medswin: case {failure['case']} failed: {failure['error']}", file=sys.stderr)
    return 1 if summary["n_failed"] else 0
