"""Run one :class:`~medswin.inference.Predictor` over many cases: resume, prefetch, report, shard.

* **Resume**: a case whose record says it is finished (:func:`~medswin.batch.outputs.finished_record`)
  is skipped unless ``overwrite``. A case interrupted mid-way (its ``.running`` marker is still
  there, e.g. after SIGKILL) is redone. A label file that medswin did not finish is someone
  else's: it is kept and the case fails, unless ``overwrite``.
* **Failures**: a case that cannot be read, predicted or written is reported with its reason and
  the batch goes on; whatever that case had written is removed, so no partial output remains.
* **Overlap**: ``jobs`` background threads read the next cases while the network runs, and one
  writer thread writes the previous case's files (at most one write in flight).
* **Shards**: ``shard=(i, n)`` takes every n-th case (sorted by id) starting at i, so ``n``
  processes never write the same case; under ``torchrun`` the rank and world size choose it.
* **Report**: ``summary.csv`` (``summary_shard<i>of<n>.csv`` for a shard), one row per case with
  status, reason, seconds, output and label volumes (mL); rewritten after every case.
"""

from __future__ import annotations

import csv
import io
import logging
import shutil
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from medswin.batch.cases import Case, read_case
from medswin.batch.outputs import (
    OUTPUT_FORMATS,
    case_files,
    finished_record,
    label_outputs,
    running_marker,
    write_case_outputs,
)
from medswin.errors import MedSwinError

__all__ = [
    "BatchOptions",
    "CaseOutcome",
    "BatchResult",
    "shard_cases",
    "run_batch",
    "summary_rows",
    "write_summary",
]

log = logging.getLogger(__name__)

Status = Literal["done", "skipped", "failed"]


@dataclass(frozen=True)
class BatchOptions:
    """How a batch writes and resumes.

    Attributes:
        formats: label outputs, any of ``nifti``, ``mha``, ``dicom-seg`` (DICOM inputs only).
        overwrite: redo finished cases and replace files medswin did not make.
        preview: also write ``<case>_preview.png``.
        jobs: background reader threads (cases read ahead of the network).
        allow_gaps: read DICOM series with missing slices by interpolation.
        shard: ``(index, count)``: this process's part of the cases.
    """

    formats: tuple[str, ...] = ("nifti",)
    overwrite: bool = False
    preview: bool = False
    jobs: int = 1
    allow_gaps: bool = False
    shard: tuple[int, int] = (0, 1)

    def __post_init__(self) -> None:
        unknown = [f for f in self.formats if f not in OUTPUT_FORMATS]
        if unknown or not self.formats:
            raise MedSwinError(
                f"output formats must be among {', '.join(OUTPUT_FORMATS)}, got {self.formats}"
            )
        if self.jobs < 1:
            raise MedSwinError(f"--jobs must be at least 1, got {self.jobs}")
        index, count = self.shard
        if count < 1 or not 0 <= index < count:
            raise MedSwinError(f"shard must be i/n with 0 <= i < n, got {index}/{count}")

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


def _remove_owned(output_dir: Path, case_id: str, formats: Sequence[str]) -> None:
    """Delete what a run of this case left behind: its files and the writers' temporaries."""
    for path in case_files(output_dir, case_id, formats):
        path.unlink(missing_ok=True)
        for leftover in output_dir.glob(f".{path.name}.*"):
            if leftover.name.endswith((".partial", ".tmp")):
                shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink(missing_ok=True)
    running_marker(output_dir, case_id).unlink(missing_ok=True)


def _claim(case: Case, output_dir: Path, model_id: str, options: BatchOptions) -> CaseOutcome | None:
    """Decide before reading: ``skipped`` / ``failed`` outcome, or None to run (and mark it running)."""
    case_id = case.case_id
    marker = running_marker(output_dir, case_id)
    if not options.overwrite and not marker.exists():
        record = finished_record(output_dir, case_id, model_id, options.formats)
        if record is not None:
            return CaseOutcome(case_id, "skipped", record=record)
        present = [p for p in label_outputs(output_dir, case_id, options.formats).values() if p.exists()]
        if present:
            return CaseOutcome(
                case_id,
                "failed",
                reason=f"{present[0]}: exists but is not a finished output of model {model_id!r}; "
                "pass --overwrite to replace it",
            )
    _remove_owned(output_dir, case_id, options.formats)
    marker.touch()
    return None


def _reason(error: BaseException) -> str:
    if isinstance(error, MedSwinError):
        return str(error)
    if isinstance(error, MemoryError):
        return "out of memory (try --precision bf16, a smaller --sw-batch-size, or fewer --jobs)"
    return f"{type(error).__name__}: {error}"


_VOLUME_SUFFIX = "_ml"


def summary_rows(outcomes: Sequence[CaseOutcome], label_names: Sequence[str]) -> list[dict[str, str]]:
    """Rows of the summary CSV: ``case, status, reason, seconds, output`` and one ``<label>_ml`` per label."""
    rows = []
    for outcome in outcomes:
        record = outcome.record
        files = [name for name in record.get("files", {}) if not name.endswith((".json", ".png"))]
        volumes = record.get("labels", {})
        row = {
            "case": outcome.case_id,
            "status": outcome.status,
            "reason": outcome.reason,
            "seconds": f"{outcome.seconds:.2f}",
            "output": ";".join(files),
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
    from medswin.metrics.report import write_atomic

    columns = [
        "case",
        "status",
        "reason",
        "seconds",
        "output",
        *(f"{n}{_VOLUME_SUFFIX}" for n in label_names),
    ]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(summary_rows(outcomes, label_names))
    return write_atomic(path, buffer.getvalue())


def run_batch(
    predictor: Any,
    cases: Sequence[Case],
    output_dir: str | Path,
    options: BatchOptions | None = None,
    *,
    on_case: Callable[[CaseOutcome, int, int], None] | None = None,
    progress: Callable[[str, int, int, str], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> BatchResult:
    """Predict this shard's cases into ``output_dir``; see the module docstring for the guarantees.

    Args:
        predictor: a :class:`~medswin.inference.Predictor`.
        cases: every case of the batch (this function takes the shard's part).
        output_dir: created if missing.
        options: formats, overwrite, preview, jobs, shard.
        on_case: called as ``on_case(outcome, number done, number in shard)`` after every case.
        progress: called as ``progress(case_id, windows done, windows total, message)``.
        cancel: checked between windows; a cancelled case is removed and the batch stops.

    Raises:
        KeyboardInterrupt / SystemExit (e.g. SIGTERM turned into one by the CLI): after removing
        the interrupted case's files and writing the summary of the cases that finished.
    """
    options = options or BatchOptions()
    output_dir = Path(output_dir)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise MedSwinError(f"{output_dir}: cannot create the output folder ({error.strerror})") from error
    mine = shard_cases(cases, *options.shard)
    card = predictor.card
    model_id = card.id
    summary = output_dir / options.summary_name
    outcomes: list[CaseOutcome] = []

    def finish(outcome: CaseOutcome) -> None:
        outcomes.append(outcome)
        if outcome.status == "failed":
            log.warning("case %s failed: %s", outcome.case_id, outcome.reason)
        write_summary(summary, outcomes, card.labels)
        if on_case is not None:
            on_case(outcome, len(outcomes), len(mine))

    to_run: list[Case] = []
    for case in mine:
        decided = _claim(case, output_dir, model_id, options)
        if decided is None:
            to_run.append(case)
        else:
            finish(decided)

    def write(case: Case, image: Any, prediction: Any, started: float) -> CaseOutcome:
        try:
            record = write_case_outputs(
                case.case_id, image, prediction, output_dir, options.formats, preview=options.preview
            )
        except Exception as error:
            _remove_owned(output_dir, case.case_id, options.formats)
            return CaseOutcome(case.case_id, "failed", time.perf_counter() - started, _reason(error))
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
            reads.append((case, readers.submit(read_case, case, allow_gaps=options.allow_gaps)))

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
                image.meta["inputs"] = [str(p) for p in current.paths]
                prediction = predictor.predict(
                    image,
                    progress=None if progress is None else _bind(progress, current.case_id),
                    cancel=cancel,
                )
            except Exception as error:
                settle_write()
                _remove_owned(output_dir, current.case_id, options.formats)
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
                _remove_owned(output_dir, pending[0].case_id, options.formats)
        done = {o.case_id for o in outcomes}
        for case in [current, *(c for c, _ in reads)]:
            if case is not None and case.case_id not in done:
                _remove_owned(output_dir, case.case_id, options.formats)
        for case in to_run:
            if case.case_id not in done:
                running_marker(output_dir, case.case_id).unlink(missing_ok=True)
        raise
    finally:
        readers.shutdown(wait=False, cancel_futures=True)
        writer.shutdown(wait=True)
    if not outcomes:
        write_summary(summary, outcomes, card.labels)
    return BatchResult(outcomes, summary)


def _bind(progress: Callable[[str, int, int, str], None], case_id: str) -> Callable[[int, int, str], None]:
    def relay(done: int, total: int, message: str) -> None:
        progress(case_id, done, total, message)

    return relay
