"""``medswin listen``: receive studies by C-STORE, segment each when complete, send the SEGs back.

A thin shell over :class:`~medswin.pacs.listener.StudyReceiver` and :func:`~medswin.batch.run_batch`.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run"]

log = logging.getLogger(__name__)

DESCRIPTION = """\
Listen for DICOM C-STORE (a DICOM node for the PACS or a modality to send studies to). Each study
counts as complete when no instance of it arrived for --quiet-period seconds; its series of the model's
modality are then segmented into OUT_DIR as by medswin predict (records, resume, summary.csv)
and, with --send-to, the DICOM-SEGs are stored on that node. Only the AE titles named by --accept
(and the --send-to node's) may send. Received files wait in OUT_DIR/.incoming and are deleted once
their study is done. SIGTERM (or Ctrl-C) stops listening after cancelling a running case.
Exit code: 0 stopped, 1 some case failed, 2 usage or setup error.
"""


def add_parser(subparsers: Any) -> None:
    from medswin.cli.predict import add_pacs_options, add_predictor_options

    parser = subparsers.add_parser(
        "listen",
        help="receive studies by DICOM C-STORE, segment them, send the DICOM-SEGs back",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--port", type=int, required=True, help="TCP port to listen on")
    parser.add_argument("--bind", default="0.0.0.0", help="address to listen on (default: every interface)")
    parser.add_argument(
        "--accept", action="append", default=[], metavar="AE_TITLE", help="calling AE title allowed to send"
    )
    parser.add_argument("--out", "-o", dest="output", type=Path, required=True, metavar="OUT_DIR")
    parser.add_argument(
        "--quiet-period",
        dest="quiet_s",
        type=float,
        default=30.0,
        metavar="S",
        help="seconds without new instances after which a study is complete (default: 30)",
    )
    parser.add_argument("--max-studies", type=int, metavar="N", help="stop after N studies")
    parser.add_argument("--timeout", type=float, metavar="S", help="stop after S seconds")
    add_predictor_options(parser)
    add_pacs_options(parser, retrieve=False)
    parser.set_defaults(run=run)


def _study_cases(study: Any, modality: str) -> list[Any]:
    """One case per series of ``modality`` in a received study, named as PACS query cases are."""
    from medswin.batch import Case
    from medswin.io.dicom_series import discover_series

    cases = []
    for series in discover_series(study.folder):
        if series.modality.upper() == modality.upper():
            suffix = f"s{series.number}" if series.number is not None else series.uid
            cases.append(Case(f"{study.study_uid}_{suffix}", (study.folder,), series.uid))
    return cases


def run(args: argparse.Namespace) -> int:
    from medswin.batch import BatchOptions, run_batch
    from medswin.cli.predict import make_predictor, pacs_settings, send_node
    from medswin.errors import MedSwinError
    from medswin.pacs.listener import StudyReceiver

    settings = pacs_settings(args)
    sink = send_node(args, settings)
    accept = [
        *args.accept,
        *([sink.address.called_ae] if sink is not None and sink.address.kind == "dimse" else []),
    ]
    predictor = make_predictor(args)
    options = BatchOptions(formats=("nifti", "dicom-seg"), send_to=sink)
    spool = args.output / ".incoming"
    receiver = StudyReceiver(
        spool, ae_title=args.ae_title, port=args.port, accept=accept, bind=args.bind, quiet_s=args.quiet_s
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        log.info("stopping (signal %d)", signum)
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    studies = failed = 0
    receiver.start()
    try:
        while not stop.is_set():
            if deadline is not None and time.monotonic() > deadline:
                log.info("stopping: --timeout %.0f s reached", args.timeout)
                break
            for study in receiver.completed():
                try:
                    cases = _study_cases(study, predictor.card.modality)
                    if not cases:
                        log.warning(
                            "study %s: no %s series; nothing to segment",
                            study.study_uid,
                            predictor.card.modality,
                        )
                    else:
                        result = run_batch(predictor, cases, args.output, options, cancel=stop.is_set)
                        failed += len(result.failed)
                        done = sum(o.status != "failed" for o in result.outcomes)
                        print(
                            f"study {study.study_uid}: {study.instances} instance(s) received, "
                            f"{done} of {len(cases)} series segmented",
                            flush=True,
                        )
                except MedSwinError as error:
                    failed += 1
                    log.error("study %s: %s", study.study_uid, error)
                except Exception as error:  # a listener outlives one bad study; the reason is logged
                    failed += 1
                    log.error("study %s: %s: %s", study.study_uid, type(error).__name__, error)
                finally:
                    shutil.rmtree(study.folder, ignore_errors=True)
                studies += 1
            if args.max_studies is not None and studies >= args.max_studies:
                break
            stop.wait(0.2)
    finally:
        receiver.stop()
        signal.signal(signal.SIGTERM, previous)
        shutil.rmtree(spool, ignore_errors=True)
    return 1 if failed else 0
