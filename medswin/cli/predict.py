"""``medswin predict -i INPUT -o OUT_DIR -m MODEL``: segment one case or a whole folder of studies.

A thin shell over :mod:`medswin.batch` (cases, resume, prefetch, reports) and the one
:class:`~medswin.inference.Predictor`; the napari plugin and the challenge pipelines use the same two.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

__all__ = [
    "add_parser",
    "add_predictor_options",
    "add_execution_options",
    "add_runtime_option",
    "make_predictor",
    "run",
    "parse_shard",
    "parse_labels_subset",
    "add_pacs_options",
    "pacs_settings",
    "send_node",
]

log = logging.getLogger(__name__)

DESCRIPTION = """\
Segment images with a model. INPUT is an image file (NIfTI, MHA/MHD, NRRD, DICOM file), a DICOM
folder or .zip, a folder of such files or of DICOM study folders (one case per file, per sub-folder,
and per series where a folder holds several), files named <case>_0000.nii.gz, <case>_0001.nii.gz
... for multi-channel models, or a .txt/.csv list of cases. Several -i make the channels of one case.
INPUT may also be a PACS query: dicomweb:http(s)://host/dicom-web?StudyInstanceUID=... or
dimse://PACS_AE@host:port?ModalitiesInStudy=CT&StudyDate=20261201- (one case per series of the
model's modality; retrieved into OUT_DIR/.medswin while the case runs, then deleted). --send-to
stores the DICOM outputs (dicom-seg, rtstruct; dicom-seg when neither is chosen) on a node; a failed
send is retried by a rerun.
DICOMweb credentials come from MEDSWIN_PACS_USER + MEDSWIN_PACS_PASSWORD, MEDSWIN_PACS_TOKEN or
MEDSWIN_PACS_AUTH_FILE (JSON, chmod 600), never from the command line.

Per case, OUT_DIR receives <case>.nii.gz (or .mha, DICOM-SEG <case>.dcm, RTSTRUCT <case>.rtstruct.dcm,
surface meshes <case>_mesh_<label>.stl in LPS mm) on the input's exact grid,
<case>.json (label volumes in mL, timings, the model's id, checksums of the outputs) and, on request,
probabilities and a PNG preview; OUT_DIR/summary.csv lists every case with its status and volumes.
Every file is written atomically. Re-running skips finished cases (their record and checksums
match), adds missing outputs, redoes interrupted ones and ones made with other settings (unless
--no-redo-changed); --overwrite redoes everything. Files medswin did not write are never replaced
without --overwrite; OUT_DIR must not hold the inputs, and one run at a time holds it (shards of one
split together). A failing case is reported and the batch goes on. Exit code: 0 all cases done, 1 some cases failed (or, with --fail-on-qc, some case's
quality verdict is fail), 2 usage or model error.

Quality control: every case's <case>.json holds a qc block (verdict ok/warn/fail and its checks: fit
to the model card, volumes against the card's plausible ranges, pieces, organs cut by the scan's
edge, left/right sides, model confidence) and summary.csv its qc and qc_reason columns; `medswin
report OUT_DIR` lists the cases, failed first, in OUT_DIR/report.html.

MODEL is a medswin checkpoint (.safetensors, which carries its model card), the name of a shipped
model (e.g. demo) or of a published model (medswin weights list, e.g. swin_unetr_btcv), which is
downloaded, verified and cached on first use (MEDSWIN_OFFLINE=1: from the cache only).

Scale-out: `torchrun --nproc_per_node N -m medswin predict ...` gives every process its share of
the cases (one GPU each with --device cuda) and rank 0 writes the merged summary.csv;
--shard i/n does the same for processes you start yourself.

Speed: the defaults choose for this machine and record why (runtime.choices in each case's JSON):
--device auto takes a CUDA GPU when torch sees one; --precision auto takes bf16 on GPUs and on CPUs
with AVX-512 BF16/AMX; --runtime auto runs torch on GPUs and, on CPUs, switches to OpenVINO once it
is measured faster here (BTCV fs48 on 2 vCPUs: 0.63-0.71x torch's time): the first case large enough
to repay the export (about 80 s for fs48) exports and measures it, later cases and runs reuse both. medswin keeps freed memory in the
process (glibc malloc thresholds) because returning it to the kernel after every window dominated
run time; set GLIBC_TUNABLES yourself to do the same for other tools.
"""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="segment one image or a folder of studies; labels on each input's own grid",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-i",
        "--input",
        required=True,
        action="append",
        metavar="INPUT",
        help="image, DICOM folder/zip, folder of cases or case list; repeat for one case's channels",
    )
    parser.add_argument("-o", "--output", required=True, type=Path, metavar="OUT_DIR", help="output folder")
    add_predictor_options(parser)
    add_output_format_option(parser, ["nifti"])
    parser.add_argument(
        "--save-probabilities",
        action="store_true",
        help="also write <case>_probabilities.nii.gz (float32 per class; needs K x volume memory)",
    )
    parser.add_argument(
        "--labels-subset",
        metavar="LABELS",
        help="keep only these labels, by name or value, comma separated (e.g. liver,spleen)",
    )
    parser.add_argument(
        "--keep-largest", action="store_true", help="keep only the largest connected component of each label"
    )
    parser.add_argument(
        "--min-size-mm3",
        type=float,
        default=0.0,
        metavar="MM3",
        help="remove connected components smaller than this volume (default: 0, keep all)",
    )
    parser.add_argument("--preview", action="store_true", help="write <case>_preview.png (three slices)")
    parser.add_argument(
        "--fail-on-qc",
        action="store_true",
        help="exit 1 when any case's quality verdict is fail (for pipelines); the outputs are written either way",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="redo finished cases, replace existing files"
    )
    parser.add_argument(
        "--no-redo-changed",
        dest="redo_changed",
        action="store_false",
        help="keep (and report) finished cases made with other settings instead of redoing them",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="background threads reading the next cases (default: 1)",
    )
    parser.add_argument("--shard", metavar="I/N", help="process only the I-th of N shares of the cases")
    parser.add_argument(
        "--allow-gaps", action="store_true", help="interpolate DICOM series with missing slices"
    )
    parser.add_argument("--case", help="output name for a single case instead of the input's file name")
    parser.add_argument(
        "--deidentify",
        action="store_true",
        help="write DICOM-SEG and RTSTRUCT de-identified (DICOM PS3.15 basic profile: pseudonymous patient, new UIDs kept "
        "consistent within the output folder, PatientIdentityRemoved YES)",
    )
    parser.add_argument(
        "--case-names",
        choices=("source", "index", "hash"),
        default="source",
        help="output names: from the input's name (default), or case-0001... / case-<hash>, so a patient's "
        "name in a folder name reaches no output file, record, summary or preview",
    )
    add_pacs_options(parser)
    parser.set_defaults(run=run)


def add_output_format_option(parser: argparse.ArgumentParser, default: list[str]) -> None:
    """``--output-format``, its choices the writer registry's (shared by ``predict`` and ``listen``)."""
    from medswin.io.outputs import WRITERS

    dicom = ", ".join(n for n, w in WRITERS.items() if w.needs_dicom_source)
    parser.add_argument(
        "--output-format",
        nargs="+",
        choices=tuple(WRITERS),
        default=default,
        metavar="FORMAT",
        help=f"label outputs, one or more of {', '.join(WRITERS)} ({dicom} for DICOM inputs; "
        f"default: {' '.join(default)})",
    )


def add_pacs_options(parser: argparse.ArgumentParser, *, retrieve: bool = True) -> None:
    """``--send-to``, ``--ae-title`` and ``--ca-bundle``, shared by ``predict`` and ``listen``;
    ``retrieve``: also ``--move-port`` (for PACS queries)."""
    parser.add_argument(
        "--send-to",
        metavar="NODE",
        help="store each DICOM-SEG/RTSTRUCT on this node: dicomweb:https://host/dicom-web or dimse://AE@host:port",
    )
    parser.add_argument(
        "--ae-title", default="MEDSWIN", help="medswin's own DICOM AE title (default: MEDSWIN)"
    )
    parser.add_argument(
        "--ca-bundle", type=Path, metavar="PEM", help="trust these certificate authorities for https nodes"
    )
    if not retrieve:
        return
    parser.add_argument(
        "--move-port",
        metavar="[HOST:]PORT",
        help="retrieve by C-MOVE to --ae-title, received on this port (for a PACS without C-GET; "
        "it must know the AE title at this host and port)",
    )


def pacs_settings(args: argparse.Namespace) -> Any:
    """The :class:`~medswin.pacs.base.PacsSettings` of the command line (credentials from the environment)."""
    from medswin.pacs.auth import load_credentials
    from medswin.pacs.base import PacsSettings

    move_to = None
    if getattr(args, "move_port", None):
        host, _, port = str(args.move_port).rpartition(":")
        if not port.isdigit() or not 0 < int(port) < 65536:
            from medswin.errors import MedSwinError

            raise MedSwinError(f"--move-port must be PORT or HOST:PORT, got {args.move_port!r}")
        move_to = (host or "0.0.0.0", int(port))
    return PacsSettings(
        ae_title=args.ae_title, ca_bundle=args.ca_bundle, credentials=load_credentials(), move_to=move_to
    )


def send_node(args: argparse.Namespace, settings: Any) -> Any:
    """The ``--send-to`` node, or None."""
    if not args.send_to:
        return None
    from medswin.errors import MedSwinError
    from medswin.pacs.nodes import parse_address
    from medswin.pacs.series import connect

    address = parse_address(args.send_to, what="--send-to")
    if address.query:
        raise MedSwinError("--send-to names a node, not a query; leave out the ?...")
    return connect(address, settings)


def add_predictor_options(parser: argparse.ArgumentParser, *, model_required: bool = True) -> None:
    """The Predictor's options, shared by ``predict`` and ``submit``."""
    parser.add_argument(
        "-m",
        "--model",
        required=model_required,
        help="medswin checkpoint (.safetensors), shipped model name or published model name (medswin weights list)",
    )
    add_execution_options(parser)
    parser.add_argument(
        "--overlap", type=float, default=None, help="sliding-window overlap in [0, 1) (default: the model's)"
    )
    parser.add_argument(
        "--blend",
        choices=("gaussian", "constant"),
        default=None,
        help="how overlapping windows are blended (default: the model card's, as its source ran it)",
    )
    parser.add_argument("--tta", action="store_true", help="mirror test-time augmentation (8x slower in 3D)")
    parser.add_argument(
        "--sw-batch-size", type=int, default=1, metavar="N", help="windows per network call (default: 1)"
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: one per core)")


def add_execution_options(parser: argparse.ArgumentParser) -> None:
    """``--device``, ``--precision`` and ``--runtime``: where and how the network runs (all ``auto``-able),
    shared by ``predict``, ``submit``, ``listen`` and ``x2s predict``."""
    from medswin.inference.runtime import PRECISION_CHOICES

    parser.add_argument(
        "--device",
        default="auto",
        help="auto (default: a CUDA GPU when torch sees one, else the CPU), cpu, cuda, cuda:1 ...",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISION_CHOICES,
        default="auto",
        help="network precision; auto (default): bf16 on GPUs and on CPUs with AVX-512 BF16/AMX, fp32 "
        "elsewhere (the choice and its reason are logged and recorded)",
    )
    add_runtime_option(parser)


def add_runtime_option(parser: argparse.ArgumentParser) -> None:
    """``--runtime``, shared by ``predict``, ``submit`` and ``x2s predict``."""
    from medswin.inference.runtime import runtime_choices

    parser.add_argument(
        "--runtime",
        choices=runtime_choices(),
        default=None,
        help="what runs the network on each window: auto (default, or $MEDSWIN_RUNTIME: torch on GPUs; on CPUs torch until "
        "OpenVINO is measured faster on this machine, the first big case exporting to it); torch; openvino "
        "or onnxruntime (CPU; the network is exported once and cached beside the weights)",
    )


def make_predictor(args: argparse.Namespace, device: str | None = None, **options: Any) -> Any:
    """A :class:`~medswin.inference.Predictor` from :func:`add_predictor_options`' arguments."""
    from medswin.errors import MedSwinError
    from medswin.inference import Predictor

    if args.overlap is not None and not 0 <= args.overlap < 1:
        raise MedSwinError(f"--overlap must be in [0, 1), got {args.overlap}")
    if args.sw_batch_size < 1:
        raise MedSwinError(f"--sw-batch-size must be at least 1, got {args.sw_batch_size}")
    return Predictor(
        args.model,
        device=device or args.device,
        precision=args.precision,
        overlap=args.overlap,
        mode=args.blend,
        sw_batch_size=args.sw_batch_size,
        tta=args.tta,
        threads=args.threads,
        runtime=args.runtime,
        **options,
    )


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"1/4"`` -> ``(1, 4)``; raises MedSwinError for anything else."""
    from medswin.errors import MedSwinError

    if text is None:
        return None
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise MedSwinError(f"--shard must look like I/N (e.g. 0/2), got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise MedSwinError(f"--shard {text}: needs 0 <= I < N")
    return index, count


def parse_labels_subset(text: str | None, labels: dict[int, str]) -> tuple[int, ...] | None:
    """Label values for ``--labels-subset`` (names or values); raises MedSwinError naming unknown ones."""
    from medswin.errors import MedSwinError

    if not text:
        return None
    by_name = {name: value for value, name in labels.items()}
    values = []
    for item in (part.strip() for part in text.split(",") if part.strip()):
        if item in by_name:
            values.append(by_name[item])
        elif item.isdigit() and int(item) in labels:
            values.append(int(item))
        else:
            known = ", ".join(f"{v}={n}" for v, n in sorted(labels.items()) if v != 0)
            raise MedSwinError(f"--labels-subset: the model has no label {item!r}; it has {known}")
    return tuple(values)


@contextlib.contextmanager
def sigterm_as_exit() -> Iterator[None]:
    """Turn SIGTERM into SystemExit(143) so the batch removes the interrupted case before exiting."""

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from medswin.batch import BatchOptions, check_output_folder, discover_cases, write_summary
    from medswin.batch.case_names import rename_cases
    from medswin.batch.runner import recorded_outcomes
    from medswin.distributed import all_gather, setup_distributed
    from medswin.errors import MedSwinError
    from medswin.transforms import Postprocess

    if args.min_size_mm3 < 0:
        raise MedSwinError(f"--min-size-mm3 must be >= 0, got {args.min_size_mm3}")
    shard = parse_shard(args.shard)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and shard is not None:
        raise MedSwinError("--shard is chosen by torchrun's rank already; leave it out under torchrun")
    from medswin.pacs.nodes import is_pacs_address

    remote = len(args.input) == 1 and is_pacs_address(args.input[0])
    settings = pacs_settings(args) if remote or args.send_to else None
    sink = send_node(args, settings)
    # A PACS query needs the model's modality; any other input is checked before the model loads.
    cases = [] if remote else discover_cases(args.input, skip=[args.output])
    if args.case and not remote:
        if len(cases) != 1:
            raise MedSwinError(f"--case names one output, but the input holds {len(cases)} cases")
        cases = [replace(cases[0], case_id=args.case)]
    if args.case_names != "source":
        if args.case:
            raise MedSwinError("--case and --case-names exclude each other: --case names the output itself")
        if not remote:
            check_output_folder(args.output, args.input)  # before anything is made in OUT
        cases = rename_cases(cases, args.case_names, args.output)
    # Collectives wait for the slowest rank's share of an overnight batch.
    ctx = setup_distributed(args.device, backend="gloo", timeout=timedelta(days=7))
    try:
        predictor = make_predictor(args, str(ctx.device), save_probabilities=args.save_probabilities)
        channels = predictor.card.channels
        if len(args.input) > 1 and len(args.input) != len(channels):
            raise MedSwinError(
                f"{len(args.input)} inputs given as the channels of one case, but model {predictor.card.id!r} "
                f"takes {len(channels)} ({', '.join(channels)})"
            )
        if remote:
            cases = discover_cases(args.input, modality=predictor.card.modality, pacs=settings)
            if args.case:
                if len(cases) != 1:
                    raise MedSwinError(f"--case names one output, but the query matched {len(cases)} series")
                cases = [replace(cases[0], case_id=args.case)]
            cases = rename_cases(cases, args.case_names, args.output)
        predictor.postprocess = Postprocess(
            keep_labels=parse_labels_subset(args.labels_subset, predictor.card.labels),
            keep_largest=args.keep_largest,
            min_size_mm3=args.min_size_mm3,
        )
        formats = sent_formats(args.output_format, sink)
        options = BatchOptions(
            formats=formats,
            overwrite=args.overwrite,
            redo_changed=args.redo_changed,
            preview=args.preview,
            jobs=args.jobs,
            allow_gaps=args.allow_gaps,
            shard=shard or (ctx.rank, ctx.world),
            record_inputs=args.case_names == "source",
            deidentify=args.deidentify,
            send_to=sink,
        )
        quiet = bool(getattr(args, "quiet", False)) or not ctx.main
        with sigterm_as_exit():
            result = run_with_progress(predictor, cases, args.output, options, quiet)
        outcomes = [o for part in all_gather(result.outcomes, ctx) for o in part]
        if ctx.world > 1 and ctx.main:
            earlier = recorded_outcomes(args.output, {c.case_id for c in cases})
            merged = sorted([*outcomes, *earlier], key=lambda o: o.case_id)
            write_summary(args.output / "summary.csv", merged, predictor.card.labels)
    finally:
        ctx.close()
    if not quiet or any(o.status == "failed" for o in outcomes):
        report_batch(
            outcomes, args.output / ("summary.csv" if ctx.world > 1 else options.summary_name), quiet
        )
    failed_qc = qc_failures(outcomes) if args.fail_on_qc else []
    for outcome in failed_qc:
        reason = quality_of(outcome.record).reason
        print(f"medswin: case {outcome.case_id} failed quality control: {reason}", file=sys.stderr)
    return 1 if failed_qc or any(o.status == "failed" for o in outcomes) else 0


def sent_formats(formats: list[str], sink: Any) -> tuple[str, ...]:
    """The formats to write: those asked for, plus dicom-seg when a ``--send-to`` node would get none."""
    from medswin.io.outputs import WRITERS

    sendable = any(WRITERS[f].sendable for f in formats)
    return tuple(dict.fromkeys([*formats, *(["dicom-seg"] if sink is not None and not sendable else [])]))


def quality_of(record: dict) -> Any:
    """The :class:`~medswin.qc.QualityReport` a case's record holds (empty when it has none)."""
    from medswin.qc.core import QualityReport

    return QualityReport.from_dict(record.get("qc"))


def qc_failures(outcomes: list) -> list:
    """The finished cases (done now or before) whose recorded quality verdict is ``fail``."""
    return [
        o
        for o in outcomes
        if o.status != "failed" and o.record.get("qc") and quality_of(o.record).verdict == "fail"
    ]


def run_with_progress(
    predictor: Any, cases: list, output: Path, options: Any, quiet: bool = False, **run_options: Any
) -> Any:
    """:func:`~medswin.batch.run_batch` with a progress bar on stderr (cases, and windows of the current case)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from medswin.batch import run_batch

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=quiet, transient=True, console=Console(stderr=True)) as bar:
        batch = bar.add_task("cases", total=None)
        windows = bar.add_task("windows", total=None)

        def on_case(outcome: Any, done: int, total: int) -> None:
            bar.update(
                batch,
                completed=done,
                total=total,
                description=f"cases (last: {outcome.case_id} {outcome.status})",
            )

        def progress(case_id: str, done: int, total: int, message: str) -> None:
            bar.update(windows, completed=done, total=total, description=f"{case_id}: {message}")

        return run_batch(predictor, cases, output, options, on_case=on_case, progress=progress, **run_options)


def report_batch(outcomes: list, summary: Path, quiet: bool = False) -> None:
    """Print what each case became (done, skipped, failed with its summary line) and the counts."""
    counts = {status: sum(o.status == status for o in outcomes) for status in ("done", "skipped", "failed")}
    # a case segmented but whose SEG could not be sent failed, yet it was predicted (or finished)
    unsent = {
        status: sum(getattr(o, "written", "") == status for o in outcomes) for status in ("done", "skipped")
    }
    if not quiet:
        for outcome in outcomes:
            if outcome.status == "done":
                found = [n for n, v in outcome.record.get("labels", {}).items() if v["voxels"]]
                quality = quality_of(outcome.record)
                verdict = f"; QC {quality.verdict}" + (f": {quality.reason}" if quality.reason else "")
                print(
                    f"{outcome.case_id}: {', '.join(outcome.record['files'])} "
                    f"(labels found: {', '.join(found) or 'none'}; {outcome.seconds:.1f} s{verdict})"
                )
        not_sent = sum(unsent.values())
        print(
            f"{counts['done'] + unsent['done']} case(s) predicted, "
            f"{counts['skipped'] + unsent['skipped']} already finished, {counts['failed']} failed"
            f"{f' ({not_sent} of them segmented, but the SEG not sent)' if not_sent else ''}; summary: {summary}"
        )
    lines = _summary_lines(summary)
    for outcome in outcomes:
        if outcome.status == "failed":
            where = f" ({summary.name} line {lines[outcome.case_id]})" if outcome.case_id in lines else ""
            print(f"medswin: case {outcome.case_id} failed{where}: {outcome.reason}", file=sys.stderr)


def _summary_lines(summary: Path) -> dict[str, int]:
    """Case -> its line in the summary CSV. A failure printed with patient names masked ([PHI]) can
    then be found: the summary file holds the case's real name and paths."""
    import csv

    lines: dict[str, int] = {}
    try:
        with open(summary, newline="", encoding="utf-8") as stream:
            reader = csv.reader(stream)
            column = next(reader).index("case")
            start = reader.line_num + 1
            for row in reader:  # a reason with line breaks spans several lines of the file
                lines[row[column]] = start
                start = reader.line_num + 1
    except (OSError, StopIteration, ValueError, IndexError, csv.Error):
        return {}
    return lines
