"""Run one :class:`~medswin.inference.Predictor` over many cases: resume, prefetch, report, shard.

* **The folder**: refused when it holds inputs, and locked for the run
  (:mod:`medswin.batch.folder`); zips are extracted into the lock's work folder.
* **Resume**: a case whose record is intact (:func:`~medswin.batch.outputs.intact_record`), made
  with the same settings (:func:`~medswin.batch.outputs.prediction_settings`) and listing every
  requested output is skipped unless ``overwrite``. One that lacks a requested output (another
  format, probabilities, preview) is predicted again and only the missing files are added. One made
  with other settings is redone (or, without ``redo_changed``, kept and reported). A case
  interrupted mid-way (its ``.running`` marker is still there, e.g. after SIGKILL) is redone.
* **Ownership**: a file medswin does not own (:func:`~medswin.batch.outputs.owned_files`) is never
  replaced or deleted: a case that would write it fails, unless ``overwrite``.
* **Failures**: a case that cannot be read, predicted or written is reported with its reason and
  the batch goes on; whatever that case had written is removed, so no partial output remains.
* **Overlap**: ``jobs`` background threads read the next cases while the network runs, and one
  writer thread writes the previous case's files (at most one write in flight).
* **Shards**: ``shard=(i, n)`` takes every n-th case (sorted by id) starting at i, so ``n``
  processes never write the same case; under ``torchrun`` the rank and world size choose it.
* **Sending**: with ``send_to`` (a PACS node), each case's sendable outputs (the writers marked
  ``sendable``: DICOM-SEG, RTSTRUCT) among ``formats`` are stored there once written. A refused or
  failed send leaves the files and their record on disk, notes the failure in the record (``sent``)
  and fails the case (:attr:`CaseOutcome.written` says it was segmented all the same); a rerun finds
  the case finished and retries only what was not sent.
* **Retrieval**: a PACS case (:attr:`Case.remote`) is retrieved into the work folder when read and
  that copy (patient data) is removed as soon as the case is finished or has failed.
* **Report**: ``summary.csv`` (``summary_shard<i>of<n>.csv`` for a shard), one row per case with
  status, reason, seconds, output, the QC verdict and its reason (``qc``, ``qc_reason``, from the
  prediction's :attr:`quality`, whatever the predictor) and label volumes (mL); rewritten after every
  case. The folder's ``summary.csv`` also lists every other case that has a record there
  (:func:`recorded_outcomes`) and keeps the failed rows of earlier runs for cases not redone since
  (:func:`earlier_failures`).
"""

from __future__ import annotations

import csv
import errno
import io
import json
import logging
import shutil
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from medswin.batch.case_names import hide_sources
from medswin.batch.cases import Case, case_scratch, read_case
from medswin.batch.folder import OutputLock, check_output_folder, folder_key
from medswin.batch.outputs import (
    IncompleteOutputsError,
    changed_files,
    mark_running,
    marked_names,
    owned_files,
    planned_files,
    prediction_settings,
    read_record,
    record_path,
    recorded_outputs,
    running_marker,
    setting_changes,
    write_case_outputs,
)
from medswin.errors import MedSwinError
from medswin.files import is_temp_name, write_failure
from medswin.inference.contract import PredictorLike, missing_members
from medswin.io.deidentify import REVISION as DEIDENTIFY_REVISION
from medswin.io.outputs import WRITERS
from medswin.qc.core import QualityReport

if TYPE_CHECKING:
    from medswin.inference.predictor import Prediction

__all__ = [
    "BatchOptions",
    "CaseOutcome",
    "BatchResult",
    "shard_cases",
    "run_batch",
    "recorded_outcomes",
    "summary_rows",
    "write_summary",
]

log = logging.getLogger(__name__)

Status = Literal["done", "skipped", "failed"]


@dataclass(frozen=True)
class BatchOptions:
    """How a batch writes and resumes.

    Attributes:
        formats: label outputs, writer names of :data:`~medswin.io.outputs.WRITERS` (``nifti``,
            ``mha``, ``mesh``; ``dicom-seg`` and ``rtstruct`` for DICOM inputs).
        overwrite: redo finished cases and replace files medswin did not make.
        redo_changed: redo finished cases whose record holds other settings (else keep and report them).
        preview: also write ``<case>_preview.png``.
        jobs: background reader threads (cases read ahead of the network).
        allow_gaps: read DICOM series with missing slices by interpolation.
        shard: ``(index, count)``: this process's part of the cases.
        record_inputs: list the input file names in each case's record; off when the case names
            hide their source (``--case-names index|hash``), whose names would undo that: then a
            failed case's reason names no input path and no source UID either
            (:func:`~medswin.batch.case_names.hide_sources`).
        deidentify: write DICOM outputs de-identified (:mod:`medswin.io.deidentify`), pseudonyms under
            the folder's key (:func:`~medswin.batch.folder.folder_key`).
        send_to: a PACS node (:func:`medswin.pacs.series.connect`) that receives every sendable
            output (``dicom-seg``, ``rtstruct``); needs one among ``formats``.
    """

    formats: tuple[str, ...] = ("nifti",)
    overwrite: bool = False
    redo_changed: bool = True
    preview: bool = False
    jobs: int = 1
    allow_gaps: bool = False
    shard: tuple[int, int] = (0, 1)
    record_inputs: bool = True
    deidentify: bool = False
    send_to: Any = None

    def __post_init__(self) -> None:
        unknown = [f for f in self.formats if f not in WRITERS]
        if unknown or not self.formats:
            raise MedSwinError(f"output formats must be among {', '.join(WRITERS)}, got {self.formats}")
        if self.jobs < 1:
            raise MedSwinError(f"--jobs must be at least 1, got {self.jobs}")
        index, count = self.shard
        if count < 1 or not 0 <= index < count:
            raise MedSwinError(f"shard must be i/n with 0 <= i < n, got {index}/{count}")
        if self.send_to is not None and not self.sent_formats:
            sendable = " or ".join(n for n, w in WRITERS.items() if w.sendable)
            raise MedSwinError(f"sending results to a PACS needs a DICOM output format ({sendable})")

    @property
    def sent_formats(self) -> tuple[str, ...]:
        """The formats whose files go to ``send_to``."""
        return tuple(f for f in self.formats if WRITERS[f].sendable)

    @property
    def summary_name(self) -> str:
        index, count = self.shard
        return "summary.csv" if count == 1 else f"summary_shard{index}of{count}.csv"


@dataclass
class CaseOutcome:
    """What happened to one case: ``done`` (predicted now), ``skipped`` (finished before) or ``failed``."""

    case_id: str
    status: Status
    seconds: float = 0.0
    reason: str = ""
    record: dict[str, Any] = field(default_factory=dict)
    #: a case whose outputs are written but whose DICOM outputs could not be sent is ``failed`` (a
    #: rerun retries the send); this says what it was before the send: ``done`` (segmented now)
    #: or ``skipped`` (segmented by an earlier run). Empty for every other case.
    written: Literal["done", "skipped", ""] = ""

    @property
    def segmented(self) -> bool:
        """Its outputs are written (now or earlier), even if sending the SEG afterwards failed."""
        return self.status != "failed" or bool(self.written)


@dataclass
class BatchResult:
    outcomes: list[CaseOutcome]
    summary: Path

    @property
    def failed(self) -> list[CaseOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]


def shard_cases(cases: Sequence[Case], index: int, count: int) -> list[Case]:
    """Every ``count``-th case by id, from ``index``: disjoint shards that together cover all cases."""
    return sorted(cases, key=lambda c: c.case_id)[index::count]


def _remove(paths: Sequence[Path]) -> None:
    """Delete files and the writers' temporaries (``.<name>.*.partial``) left beside them."""
    for path in paths:
        path.unlink(missing_ok=True)
        for leftover in path.parent.glob(f".{path.name}.*"):
            if is_temp_name(leftover, of=path.name):
                shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink(missing_ok=True)


def _remove_run(output_dir: Path, case_id: str) -> None:
    """Delete what an unfinished run of this case wrote (the files its marker names), then the marker.

    The case's record, when there is one, is an earlier finished run's: it and its files stay.
    """
    marker = running_marker(output_dir, case_id)
    if marker.exists():
        record = read_record(output_dir, case_id)
        kept = {record_path(output_dir, case_id), *(output_dir / n for n in (record or {}).get("files", {}))}
        _remove(sorted(owned_files(output_dir, case_id, None) - kept))
    marker.unlink(missing_ok=True)


def _settle_marker(output_dir: Path, case_id: str, record: Mapping[str, Any]) -> None:
    """Remove a running marker whose run finished: the intact record lists every file it names.

    The record is written last; a run stopped between writing it and removing the marker is done.
    """
    marker = running_marker(output_dir, case_id)
    named = set(marked_names(output_dir, case_id)) - {record_path(output_dir, case_id).name}
    if marker.exists() and named and named <= set(record["files"]):
        marker.unlink(missing_ok=True)


@dataclass(frozen=True)
class _Plan:
    """A claimed case: the outputs to write now, and the intact record whose files stay (or None)."""

    kinds: tuple[str, ...]
    earlier: dict[str, Any] | None


def _decide(
    case_id: str,
    record: dict[str, Any] | None,
    intact: bool,
    wanted: Sequence[str],
    settings: Mapping[str, Any],
    options: BatchOptions,
) -> CaseOutcome | _Plan:
    """Skip, keep, complete or redo a case from its record (see the module docstring).

    ``intact``: the record's files are unchanged and no run of the case was interrupted.
    """
    fresh = _Plan(tuple(wanted), None)
    if options.overwrite or record is None or not intact:
        return fresh
    changes = setting_changes(record.get("settings"), settings)
    if changes and not options.redo_changed:
        reason = f"made with other settings ({'; '.join(changes)}); kept (--no-redo-changed)"
        log.warning("case %s: %s", case_id, reason)
        return CaseOutcome(case_id, "skipped", reason=reason, record=record)
    if changes:
        log.info("case %s: redone, its record holds other settings (%s)", case_id, "; ".join(changes))
        return fresh
    done = recorded_outputs(record)
    missing = tuple(kind for kind in wanted if kind not in done)
    if not missing:
        return CaseOutcome(case_id, "skipped", record=record)
    return _Plan(missing, record)


def _claim(
    case: Case,
    output_dir: Path,
    wanted: Sequence[str],
    settings: Mapping[str, Any],
    options: BatchOptions,
    names: Mapping[int, str],
) -> CaseOutcome | _Plan:
    """Decide before reading: ``skipped`` / ``failed`` outcome, or the plan to run (and mark it running)."""
    case_id = case.case_id
    record = read_record(output_dir, case_id)
    changed = changed_files(output_dir, record) if record is not None else []
    if record is not None and not changed:
        _settle_marker(output_dir, case_id, record)
    intact = not changed and not running_marker(output_dir, case_id).exists()
    decided = _decide(case_id, record, intact, wanted, settings, options)
    if isinstance(decided, CaseOutcome):
        return decided
    owned = owned_files(output_dir, case_id, record, changed)
    planned = planned_files(output_dir, case_id, decided.kinds, names)
    targets = [*(p for paths in planned.values() for p in paths), record_path(output_dir, case_id)]
    foreign = [p for p in targets if (p.exists() or p.is_symlink()) and p not in owned]
    if foreign and not options.overwrite:
        return CaseOutcome(
            case_id,
            "failed",
            reason=f"{foreign[0]}: exists but is not a finished output of medswin (no record of this case "
            "vouches for it); pass --overwrite to replace it",
        )
    if decided.earlier is None:
        _remove(sorted(owned))  # outputs of other settings or of an interrupted run
    mark_running(output_dir, case_id, targets)
    return decided


def recorded_outcomes(output_dir: Path, exclude: set[str]) -> list[CaseOutcome]:
    """Rows for the cases in ``output_dir`` that have a record but are not in ``exclude`` (this run's).

    Such a case is ``skipped`` (finished by an earlier run) while its files are intact, ``failed``
    when one of them changed since or one of its outputs could not be written.
    """
    outcomes = []
    for path in sorted(output_dir.glob("*.json")):
        case_id = path.name.removesuffix(".json")
        record = None if case_id in exclude else read_record(output_dir, case_id)
        if record is None:
            continue
        changed = changed_files(output_dir, record)
        failed_outputs = record.get("failed_outputs") or {}
        if changed:
            reason = f"{output_dir / changed[0]}: changed or removed since medswin wrote it"
            outcomes.append(CaseOutcome(case_id, "failed", reason=reason))
        elif failed_outputs:
            kind, reason = next(iter(failed_outputs.items()))
            outcomes.append(
                CaseOutcome(case_id, "failed", reason=f"{kind} not written ({reason})", record=record)
            )
        else:
            outcomes.append(
                CaseOutcome(case_id, "skipped", reason="not among this run's inputs", record=record)
            )
    return outcomes


def earlier_failures(summary: Path, exclude: set[str]) -> list[CaseOutcome]:
    """Failed rows of an earlier ``summary`` for cases not in ``exclude`` (this run's, or recorded ones).

    A case that failed leaves no record, so without these rows the next run's summary would forget it
    (a listener segmenting one study at a time would list only the last study's failures).
    """
    try:
        with summary.open(newline="", encoding="utf-8") as stream:
            rows = list(csv.DictReader(stream))
    except (OSError, UnicodeDecodeError, csv.Error):
        return []
    outcomes = []
    for row in rows:
        case_id = row.get("case") or ""
        if row.get("status") == "failed" and case_id and case_id not in exclude:
            try:
                seconds = float(row.get("seconds") or 0.0)
            except ValueError:
                seconds = 0.0
            outcomes.append(CaseOutcome(case_id, "failed", seconds, row.get("reason") or ""))
    return outcomes


def _reason(error: BaseException) -> str:
    """One line for ``summary.csv`` and stderr, the cause first (a library's message may be a
    whole traceback: only its first line is kept)."""
    if isinstance(error, MemoryError):
        return "out of memory (try --precision bf16, a smaller --sw-batch-size, or fewer --jobs)"
    if isinstance(error, OSError) and error.errno == errno.ENOSPC and error.filename:
        return write_failure(error.filename, error)
    text = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
    if isinstance(error, MedSwinError):
        return text
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


_VOLUME_SUFFIX = "_ml"


def summary_rows(outcomes: Sequence[CaseOutcome], label_names: Sequence[str]) -> list[dict[str, str]]:
    """Rows of the summary CSV: ``case, status, reason, seconds, output, qc, qc_reason`` and one
    ``<label>_ml`` per label. ``qc`` is the recorded verdict (``ok``/``warn``/``fail``, empty for a
    case without a record), ``qc_reason`` the sentence of its first check with that verdict."""
    rows = []
    for outcome in outcomes:
        record = outcome.record
        files = [name for name in record.get("files", {}) if not name.endswith((".json", ".png"))]
        volumes = record.get("labels", {})
        quality = QualityReport.from_dict(record.get("qc")) if "qc" in record else None
        row = {
            "case": outcome.case_id,
            "status": outcome.status,
            "reason": outcome.reason,
            "seconds": f"{outcome.seconds:.2f}",
            "output": ";".join(files),
            "qc": quality.verdict if quality is not None else "",
            "qc_reason": quality.reason if quality is not None else "",
        }
        for name in label_names:
            volume = volumes.get(name, {}).get("volume_ml")
            row[f"{name}{_VOLUME_SUFFIX}"] = "" if volume is None else f"{volume:.4f}"
        rows.append(row)
    return rows


def write_summary(path: Path, outcomes: Sequence[CaseOutcome], labels: Mapping[int, str]) -> Path:
    """Write the summary CSV atomically (see :func:`summary_rows`), a volume column per label of ``labels``
    (the model card's value -> name)."""
    label_names = [labels[v] for v in sorted(labels) if v != 0]
    from medswin.files import write_atomic

    columns = [
        "case",
        "status",
        "reason",
        "seconds",
        "output",
        "qc",
        "qc_reason",
        *(f"{n}{_VOLUME_SUFFIX}" for n in label_names),
    ]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(summary_rows(outcomes, label_names))
    return write_atomic(path, buffer.getvalue())


def _sent_files(record: Mapping[str, Any], destination: str) -> set[str]:
    """The files already stored on ``destination`` (a note of an older run names none: it sent the SEG)."""
    note = record.get("sent", {}).get(destination, {})
    if "files" in note:
        return set(note["files"])
    return (
        {f"{record.get('case', '')}{WRITERS['dicom-seg'].suffix}"} if note.get("status") == "sent" else set()
    )


def _deliver(outcome: CaseOutcome, output_dir: Path, node: Any, formats: Sequence[str]) -> CaseOutcome:
    """Store a finished case's files of ``formats`` (sendable ones) on ``node`` and note the result in
    its record (atomically). Returns the outcome, ``failed`` (the files stay) when the node refused or failed.
    """
    from datetime import datetime, timezone

    from medswin.files import write_atomic

    destination = str(node.address)
    record = dict(outcome.record)
    if outcome.status == "failed":
        return outcome
    outputs = recorded_outputs(record) if record else {}
    names = [n for fmt in formats for n in outputs.get(fmt, [])]
    sent = _sent_files(record, destination)
    if names and set(names) <= sent:
        return outcome
    try:
        missing = [fmt for fmt in formats if fmt not in outputs]
        if missing:
            raise MedSwinError(f"{output_dir / outcome.case_id}: no {missing[0]} was written for this case")
        node.store([output_dir / n for n in names if n not in sent])
        note: dict[str, Any] = {"status": "sent", "files": sorted(sent | set(names))}
    except Exception as error:
        note = {"status": "failed", "reason": _reason(error), "files": sorted(sent)}
    note["at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    record["sent"] = {**record.get("sent", {}), destination: note}
    write_atomic(record_path(output_dir, outcome.case_id), json.dumps(record, indent=2) + "\n")
    shown = ", ".join(names) or outcome.case_id
    if note["status"] == "sent":
        log.info("case %s: sent %s to %s", outcome.case_id, shown, destination)
        return CaseOutcome(outcome.case_id, outcome.status, outcome.seconds, outcome.reason, record)
    why = note["reason"] if destination in note["reason"] else f"{destination}: {note['reason']}"
    reason = f"{shown} written, but not sent: {why}"
    return CaseOutcome(outcome.case_id, "failed", outcome.seconds, reason, record, written=outcome.status)


def run_batch(
    predictor: PredictorLike,
    cases: Sequence[Case],
    output_dir: str | Path,
    options: BatchOptions | None = None,
    *,
    on_case: Callable[[CaseOutcome, int, int], None] | None = None,
    progress: Callable[[str, int, int, str], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    reader: Callable[..., Any] = read_case,
) -> BatchResult:
    """Predict this shard's cases into ``output_dir``; see the module docstring for the guarantees.

    Args:
        predictor: anything :class:`~medswin.inference.contract.PredictorLike`: a
            :class:`~medswin.inference.Predictor` or a :class:`~medswin.batch.biplanar.BiplanarBatchPredictor`.
        cases: every case of the batch (this function takes the shard's part).
        output_dir: created if missing.
        options: formats, overwrite, preview, jobs, shard.
        on_case: called as ``on_case(outcome, number done, number in shard)`` after every case.
        progress: called as ``progress(case_id, windows done, windows total, message)``.
        cancel: checked between windows; a cancelled case is removed and the batch stops.
        reader: reads a case for the predictor, as :func:`~medswin.batch.cases.read_case` (default)
            takes it (``allow_gaps``, ``scratch``): e.g. :func:`~medswin.batch.biplanar.read_radiograph_pair`.

    Raises:
        TypeError: before any case, when ``predictor`` lacks a member of the contract (named).
        MedSwinError: before any case, when the output folder holds inputs, is in use by another
            run or cannot be written.
        KeyboardInterrupt / SystemExit (e.g. SIGTERM turned into one by the CLI): after removing
            the interrupted case's files and writing the summary of the cases that finished.
    """
    missing = missing_members(predictor)
    if missing:
        raise TypeError(
            f"run_batch needs a PredictorLike; {type(predictor).__name__} lacks {', '.join(missing)}"
        )
    options = options or BatchOptions()
    output_dir = Path(output_dir)
    check_output_folder(output_dir, [path for case in cases for path in case.paths])
    with OutputLock(output_dir, options.shard) as lock:
        return _run_locked(
            predictor, cases, output_dir, options, lock.work, on_case, progress, cancel, reader
        )


def _run_locked(
    predictor: PredictorLike,
    cases: Sequence[Case],
    output_dir: Path,
    options: BatchOptions,
    scratch: Path,
    on_case: Callable[[CaseOutcome, int, int], None] | None,
    progress: Callable[[str, int, int, str], None] | None,
    cancel: Callable[[], bool] | None,
    reader: Callable[..., Any],
) -> BatchResult:
    """:func:`run_batch` once the folder is checked and locked; ``scratch`` is the lock's work folder."""
    mine = shard_cases(cases, *options.shard)
    card = predictor.card
    settings = prediction_settings(predictor)
    deidentify_key = folder_key(output_dir) if options.deidentify else None
    if options.deidentify:
        # recorded only when on (older records need no redo); a SEG of an older revision is redone
        settings["deidentify"] = DEIDENTIFY_REVISION
    wanted = [
        *options.formats,
        *(["probabilities"] if predictor.save_probabilities else []),
        *(["preview"] if options.preview else []),
    ]
    summary = output_dir / options.summary_name
    # The folder's summary lists every recorded case; a shard's lists its own cases only.
    earlier = [] if options.shard[1] > 1 else recorded_outcomes(output_dir, {c.case_id for c in mine})
    if options.shard[1] == 1:
        known = {c.case_id for c in mine} | {o.case_id for o in earlier}
        earlier += earlier_failures(summary, known)
    outcomes: list[CaseOutcome] = []

    by_id = {case.case_id: case for case in mine}

    def hide(case_id: str) -> Callable[[str], str] | None:
        if options.record_inputs or case_id not in by_id:
            return None
        return lambda text: hide_sources(text, by_id[case_id])

    def finish(outcome: CaseOutcome) -> None:
        shutil.rmtree(case_scratch(scratch, outcome.case_id), ignore_errors=True)
        hidden = hide(outcome.case_id)
        if hidden is not None:
            outcome.reason = hidden(outcome.reason)
        if options.send_to is not None:
            outcome = _deliver(outcome, output_dir, options.send_to, options.sent_formats)
        outcomes.append(outcome)
        if outcome.status == "failed":
            log.warning("case %s failed: %s", outcome.case_id, outcome.reason)
        write_summary(summary, sorted([*outcomes, *earlier], key=lambda o: o.case_id), card.labels)
        if on_case is not None:
            on_case(outcome, len(outcomes), len(mine))

    plans: dict[str, _Plan] = {}
    to_run: list[Case] = []
    for case in mine:
        decided = _claim(case, output_dir, wanted, settings, options, card.labels)
        if isinstance(decided, CaseOutcome):
            finish(decided)
        else:
            plans[case.case_id] = decided
            to_run.append(case)

    def write(case: Case, image: Any, prediction: Any, started: float) -> CaseOutcome:
        plan = plans[case.case_id]
        try:
            record = write_case_outputs(
                case.case_id,
                image,
                prediction,
                output_dir,
                plan.kinds,
                settings=settings,
                earlier=plan.earlier,
                deidentify_key=deidentify_key,
                hide=hide(case.case_id),
            )
        except Exception as error:
            _remove_run(output_dir, case.case_id)  # keeps what a record vouches for
            kept = error.record if isinstance(error, IncompleteOutputsError) else {}
            return CaseOutcome(case.case_id, "failed", time.perf_counter() - started, _reason(error), kept)
        running_marker(output_dir, case.case_id).unlink(missing_ok=True)
        return CaseOutcome(case.case_id, "done", time.perf_counter() - started, record=record)

    readers = ThreadPoolExecutor(max_workers=options.jobs, thread_name_prefix="medswin-read")
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="medswin-write")
    reads: deque[tuple[Case, Future]] = deque()
    queue = iter(to_run)
    pending: tuple[Case, Future] | None = None
    current: Case | None = None

    def read_ahead() -> None:
        while len(reads) < options.jobs:
            case = next(queue, None)
            if case is None:
                return
            reads.append((case, readers.submit(reader, case, allow_gaps=options.allow_gaps, scratch=scratch)))

    def settle_write() -> None:
        nonlocal pending
        if pending is not None:
            finish(pending[1].result())
            pending = None

    try:
        read_ahead()
        while reads:
            current, future = reads.popleft()
            read_ahead()
            started = time.perf_counter()
            try:
                image = future.result()
                image.meta["inputs"] = (
                    ([str(p) for p in current.paths] or [str(current.series_uid)])
                    if options.record_inputs
                    else []
                )
                prediction = predictor.predict(
                    image,
                    progress=None if progress is None else _bind(progress, current.case_id),
                    cancel=cancel,
                )
                _log_quality(current.case_id, prediction)
            except Exception as error:
                settle_write()
                _remove_run(output_dir, current.case_id)
                finish(CaseOutcome(current.case_id, "failed", time.perf_counter() - started, _reason(error)))
                if cancel is not None and cancel():
                    break
                continue
            settle_write()
            pending = (current, writer.submit(write, current, image, prediction, started))
            del image, prediction
        settle_write()
        current = None
    except BaseException:
        # Interrupted: let an in-flight write finish (it is then a finished case), drop the rest.
        if pending is not None:
            try:
                finish(pending[1].result())
            except BaseException:
                _remove_run(output_dir, pending[0].case_id)
        done = {o.case_id for o in outcomes}
        for case in [current, *(c for c, _ in reads)]:
            if case is not None and case.case_id not in done:
                _remove_run(output_dir, case.case_id)
        for case in to_run:
            if case.case_id not in done:
                running_marker(output_dir, case.case_id).unlink(missing_ok=True)
        raise
    finally:
        readers.shutdown(wait=False, cancel_futures=True)
        writer.shutdown(wait=True)
    if not outcomes:
        write_summary(summary, earlier, card.labels)
    return BatchResult(outcomes, summary)


def _log_quality(case_id: str, prediction: Prediction) -> None:
    """Say a case's QC verdict when it is not ok (recorded in its ``qc`` block either way)."""
    quality = prediction.quality
    if quality.verdict != "ok":
        log.warning("case %s: QC %s: %s", case_id, quality.verdict, quality.reason)


def _bind(progress: Callable[[str, int, int, str], None], case_id: str) -> Callable[[int, int, str], None]:
    def relay(done: int, total: int, message: str) -> None:
        progress(case_id, done, total, message)

    return relay
