"""``medswin listen``: receive studies by C-STORE, segment each when complete, send the results back.

A thin shell over :class:`~medswin.pacs.listener.StudyReceiver` and :func:`~medswin.batch.run_batch`.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run"]

log = logging.getLogger(__name__)

DESCRIPTION = """\
Listen for DICOM C-STORE (a DICOM node for the PACS or a modality to send studies to). Only the AE
titles named by --accept (and the --send-to node's) may send. Every instance is written to disk
(fsync'd) before it is acknowledged, into the queue OUT_DIR/.incoming/<StudyInstanceUID>/. A study
counts as complete when no instance of it arrived for --quiet-period seconds; its series of the model's
modality are then segmented into OUT_DIR as by medswin predict (records, resume, summary.csv; formats
from --output-format, default nifti dicom-seg) and, with --send-to, the DICOM outputs among them
(dicom-seg, rtstruct) are stored on that node. A study leaves the queue when that is done; one that
failed (or whose results could not be sent) moves to OUT_DIR/.failed/<StudyInstanceUID>/ with failure.json,
and --retry-failed puts the failed studies back in the queue. While another run holds OUT_DIR, studies
wait in the queue. SIGTERM (or Ctrl-C) stops accepting, cancels the running case and exits; the queue
stays on disk and the next start segments it.
Exit code: 0 stopped, 1 some study failed, 2 usage or setup error.
"""


def add_parser(subparsers: Any) -> None:
    from medswin.cli.predict import add_output_format_option, add_pacs_options, add_predictor_options

    parser = subparsers.add_parser(
        "listen",
        help="receive studies by DICOM C-STORE, segment them, send the DICOM-SEGs/RTSTRUCTs back",
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
    parser.add_argument(
        "--retry-failed",
        action="store_true",
        help="put the studies in OUT_DIR/.failed back in the queue before listening",
    )
    parser.add_argument("--timeout", type=float, metavar="S", help="stop after S seconds")
    add_predictor_options(parser)
    add_output_format_option(parser, ["nifti", "dicom-seg"])
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


#: seconds between two tries of a study whose output folder another run holds.
BUSY_RETRY_S = 5.0


def _segment_study(study: Any, predictor: Any, args: argparse.Namespace, options: Any, stop: Any) -> Any:
    """Segment one quiet study; the :class:`StudyOutcome` says what the queue does with it."""
    from medswin.batch import run_batch
    from medswin.batch.folder import FolderBusyError
    from medswin.errors import MedSwinError

    modality = predictor.card.modality
    try:
        cases = _study_cases(study, modality)
        if not cases:
            return StudyOutcome("failed", f"no {modality} series in the study; nothing to segment")
        result = run_batch(predictor, cases, args.output, options, cancel=stop.is_set)
    except FolderBusyError as error:
        return StudyOutcome("busy", str(error))
    except MedSwinError as error:
        return StudyOutcome("failed", str(error))
    except Exception as error:  # a listener outlives one bad study; the reason is kept with it
        return StudyOutcome("failed", f"{type(error).__name__}: {error}")
    segmented = [o for o in result.outcomes if o.segmented]
    unfinished = [o for o in result.outcomes if not o.segmented]
    if stop.is_set() and unfinished:  # cancelled by SIGTERM: stays queued for the next start
        return StudyOutcome("cancelled", "stopped while segmenting; queued for the next start")
    failed = {o.case_id: o.reason for o in result.failed}
    text = f"{len(segmented)} of {len(cases)} series segmented"
    unsent = [o for o in result.failed if o.written]
    if unsent:
        text += f", {len(unsent)} result(s) not sent ({unsent[0].reason})"
    if failed:
        return StudyOutcome("failed", text, failed)
    return StudyOutcome("done", text)


@dataclass(frozen=True)
class StudyOutcome:
    """What became of a study: ``done``, ``failed`` (kept), ``busy`` (waits) or ``cancelled`` (queued)."""

    status: str
    message: str
    cases: dict[str, str] | None = None


def run(args: argparse.Namespace) -> int:
    from medswin.batch import BatchOptions
    from medswin.cli.predict import make_predictor, pacs_settings, send_node, sent_formats
    from medswin.pacs.listener import StudyReceiver
    from medswin.pacs.spool import StudySpool

    settings = pacs_settings(args)
    sink = send_node(args, settings)
    accept = [
        *args.accept,
        *([sink.address.called_ae] if sink is not None and sink.address.kind == "dimse" else []),
    ]
    predictor = make_predictor(args)
    options = BatchOptions(formats=sent_formats(args.output_format, sink), send_to=sink)
    spool = StudySpool(args.output)
    if args.retry_failed:
        retried = spool.retry_failed()
        print(f"{len(retried)} failed study(ies) put back in the queue", flush=True)
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
    waiting: set[str] = set()
    receiver.start()
    try:
        while not stop.is_set():
            if deadline is not None and time.monotonic() > deadline:
                log.info("stopping: --timeout %.0f s reached", args.timeout)
                break
            for study in receiver.completed():
                if stop.is_set():
                    break
                instances = spool.instances(study.study_uid)
                outcome = _segment_study(study, predictor, args, options, stop)
                if outcome.status == "busy":
                    if study.study_uid not in waiting:
                        log.warning("study %s waits in the queue: %s", study.study_uid, outcome.message)
                        waiting.add(study.study_uid)
                    receiver.wait_for(study.study_uid, BUSY_RETRY_S)
                    continue
                waiting.discard(study.study_uid)
                if outcome.status == "cancelled":
                    log.info("study %s: %s", study.study_uid, outcome.message)
                    break
                studies += 1
                line = f"study {study.study_uid}: {study.instances} instance(s) received, {outcome.message}"
                if outcome.status == "failed":
                    failed += 1
                    kept = spool.fail(study.study_uid, outcome.message, outcome.cases)
                    log.error("%s; kept in %s (retry with --retry-failed)", line, kept)
                else:
                    if not spool.done(study.study_uid, instances):
                        log.info("study %s: more instances arrived meanwhile; queued again", study.study_uid)
                    print(line, flush=True)
            if args.max_studies is not None and studies >= args.max_studies:
                break
            stop.wait(0.2)
    finally:
        receiver.stop()
        signal.signal(signal.SIGTERM, previous)
        spool.tidy()
    queued = spool.queued()
    if queued:
        print(f"{len(queued)} study(ies) left in the queue {spool.incoming}; the next start segments them")
    return 1 if failed else 0
