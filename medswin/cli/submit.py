"""``medswin submit CHALLENGE``: predictions in a challenge's layout, packed and checked like its portal.

* ``brats2023`` / ``brats2024``: ``-i`` a folder of BraTS cases; writes ``OUTPUT/predictions/`` and
  ``OUTPUT/submission.zip``; ``--score`` adds lesion-wise metrics against ``<case>-seg.nii.gz``;
* ``msd``: ``-i`` a Decathlon or nnU-Net task folder (``dataset.json`` + ``imagesTs/``); writes
  ``OUTPUT/predictions/`` and ``OUTPUT/<TaskName>.zip``;
* ``grand-challenge``: the algorithm container's job, ``/input`` -> ``/output`` (``-i``/``-o`` redirect).

``--validate DIR`` (a folder or zip) checks an existing submission instead, reporting each problem
by case. Exit codes: 0 valid and every case done, 1 some case failed or a problem was found,
2 usage or model error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from medswin.errors import MedSwinError

__all__ = ["add_parser", "run"]

CHALLENGES = ("brats2023", "brats2024", "msd", "grand-challenge")


def add_parser(subparsers: Any) -> None:
    from medswin.cli.predict import add_predictor_options

    parser = subparsers.add_parser(
        "submit",
        help="make (or --validate) a BraTS, MSD or Grand Challenge submission",
        description=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("challenge", choices=CHALLENGES)
    parser.add_argument(
        "-i", "--input", type=Path, help="the challenge's input folder (grand-challenge: /input)"
    )
    parser.add_argument("-o", "--output", type=Path, help="output folder (grand-challenge: /output)")
    add_predictor_options(parser, model_required=False)
    parser.add_argument(
        "--validate", type=Path, metavar="DIR", help="check this submission folder or zip instead"
    )
    parser.add_argument(
        "--images",
        type=Path,
        help="with --validate: the input folder (BraTS cases, MSD task) to check grids against",
    )
    parser.add_argument(
        "--score", action="store_true", help="BraTS: score against <case>-seg.nii.gz where present"
    )
    parser.add_argument(
        "--jobs", type=int, default=1, metavar="N", help="background reader threads (default: 1)"
    )
    parser.add_argument("--overwrite", action="store_true", help="redo cases already predicted")
    parser.add_argument("--output-slug", default="segmentation", help="grand-challenge output socket")
    parser.add_argument(
        "--input-slugs", nargs="+", metavar="SLUG", help="grand-challenge image sockets, in channel order"
    )
    parser.set_defaults(run=run)


def _print_report(report: Any) -> int:
    print(report.summary(), file=sys.stdout if report.ok else sys.stderr)
    return 0 if report.ok else 1


def _done(result: Any) -> list[str]:
    for outcome in result.failed:
        print(f"medswin: case {outcome.case_id} failed: {outcome.reason}", file=sys.stderr)
    return [o.case_id for o in result.outcomes if o.status in ("done", "skipped")]


def _archive_target(target: Path, done: list[str], cases: list[Any]) -> Path:
    """``target`` when every case is done; otherwise ``<name>.incomplete.zip`` and a loud warning, so
    the file named for upload only ever holds a whole submission."""
    if len(done) == len(cases):
        return target
    incomplete = target.with_name(target.name.removesuffix(".zip") + ".incomplete.zip")
    print(
        f"medswin: WARNING: {len(cases) - len(done)} of {len(cases)} case(s) failed; writing {incomplete.name}, "
        f"not {target.name}: do not upload it, fix the failed cases and rerun (finished cases are kept)",
        file=sys.stderr,
    )
    return incomplete


def _brats(args: argparse.Namespace) -> int:
    from medswin.batch import BatchOptions, run_batch
    from medswin.challenges.brats import (
        BRATS_EDITIONS,
        brats_cases,
        brats_remap,
        pack_submission,
        validate_brats,
    )
    from medswin.cli.predict import make_predictor
    from medswin.transforms import Postprocess

    edition = BRATS_EDITIONS[args.challenge]
    if args.validate is not None:
        return _print_report(validate_brats(args.validate, edition, images=args.images))
    predictor = make_predictor(args)
    predictor.postprocess = Postprocess(remap=brats_remap(predictor.card, edition))
    cases = brats_cases(args.input, predictor.card)
    predictions = args.output / "predictions"
    options = BatchOptions(formats=("nifti",), overwrite=args.overwrite, jobs=args.jobs)
    done = _done(run_batch(predictor, cases, predictions, options))
    archive = pack_submission(predictions, done, _archive_target(args.output / "submission.zip", done, cases))
    report = validate_brats(archive, edition, images=args.input)
    code = _print_report(report)
    print(f"wrote {archive} ({len(done)} of {len(cases)} case(s))")
    if args.score:
        _score_brats(args.input, predictions, done, edition, args.output / "metrics.csv")
    return 1 if code or len(done) < len(cases) else 0


def _score_brats(inputs: Path, predictions: Path, cases: list[str], edition: Any, target: Path) -> None:
    from medswin.challenges.brats import lesion_settings_for
    from medswin.io import read_image
    from medswin.metrics import evaluate_case, summarize
    from medswin.metrics.brats_settings import LESION_WISE_SETTINGS
    from medswin.metrics.report import summary_path_for, write_metrics_csv, write_summary_json

    results = []
    for case in cases:
        seg = next(iter(inputs.glob(f"{case}-seg.nii.gz")), None) or next(
            iter(inputs.glob(f"*/{case}-seg.nii.gz")), None
        )
        if seg is None:
            continue
        results.append(
            evaluate_case(
                read_image(predictions / f"{case}.nii.gz", kind="label"),
                read_image(seg, kind="label"),
                brats=True,
                brats_settings=LESION_WISE_SETTINGS[lesion_settings_for(case, edition)],
                include_rc=edition.include_rc,
                case=case,
            )
        )
    if not results:
        print("no <case>-seg.nii.gz found: nothing scored", file=sys.stderr)
        return
    write_metrics_csv(results, target)
    write_summary_json(summarize(results), summary_path_for(target))
    print(f"scored {len(results)} case(s): {target}")


def _msd(args: argparse.Namespace) -> int:
    from medswin.batch import BatchOptions, run_batch
    from medswin.challenges.msd import check_card, msd_cases, pack_submission, read_task, validate_msd
    from medswin.cli.predict import make_predictor

    if args.validate is not None:
        if args.images is None:
            raise MedSwinError(
                "msd --validate needs --images TASK_FOLDER (the task's dataset.json and imagesTs/)"
            )
        return _print_report(validate_msd(args.validate, read_task(args.images)))
    task = read_task(args.input)
    predictor = make_predictor(args)
    check_card(predictor.card, task)
    cases = msd_cases(task)
    predictions = args.output / "predictions"
    options = BatchOptions(formats=("nifti",), overwrite=args.overwrite, jobs=args.jobs)
    done = _done(run_batch(predictor, cases, predictions, options))
    archive = pack_submission(
        predictions, task, done, _archive_target(args.output / f"{task.name}.zip", done, cases)
    )
    code = _print_report(validate_msd(archive, task))
    print(f"wrote {archive} ({len(done)} of {len(cases)} case(s))")
    return 1 if code or len(done) < len(cases) else 0


def _grand_challenge(args: argparse.Namespace) -> int:
    from medswin.challenges.grand_challenge import run_job
    from medswin.cli.predict import make_predictor

    if args.validate is not None:
        raise MedSwinError("grand-challenge has no --validate: the platform checks each job's output sockets")
    target = run_job(
        make_predictor(args),
        args.input or Path("/input"),
        args.output or Path("/output"),
        output_slug=args.output_slug,
        input_slugs=args.input_slugs,
    )
    print(f"wrote {target}")
    return 0


def run(args: argparse.Namespace) -> int:
    making = args.validate is None
    if making and args.challenge != "grand-challenge" and (args.input is None or args.output is None):
        raise MedSwinError(f"submit {args.challenge} needs -i INPUT and -o OUTPUT (or --validate DIR)")
    if making and args.model is None:
        raise MedSwinError(f"submit {args.challenge} needs -m MODEL (or --validate DIR)")
    if args.challenge.startswith("brats"):
        return _brats(args)
    if args.challenge == "msd":
        return _msd(args)
    return _grand_challenge(args)
