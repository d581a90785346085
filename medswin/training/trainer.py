"""``medswin train``: fit a model card's network to a datalist with a pipeline's recipe.

One function, :func:`train`, runs single-process or under ``torchrun`` (DDP: NCCL on GPUs, gloo on
CPUs; the training cases are sharded by ``DistributedSampler`` and the validation cases by rank).
Each epoch: augmented crops from a ``CacheDataset``, the pipeline's loss, optimiser and per-step
schedule, optional AMP (fp16 with a gradient scaler on GPUs, bf16 autocast on CPUs and GPUs) and
gradient checkpointing. Every ``val_every`` epochs the validation cases are segmented by the
same :class:`~medswin.inference.Predictor` users run (card preprocessing, sliding window, labels
back on the case's own grid) and scored with :func:`medswin.metrics.dice` per label (softmax
cards) or per region (sigmoid cards).

Output folder (written by rank 0 only, every file atomically):

* ``best.safetensors`` -- medswin checkpoint of the best validation score, its card's provenance
  saying how it was made (pipeline, epochs, validation Dice, date, seed);
* ``last.safetensors`` + ``last_state.safetensors`` + ``last_state.json`` -- the resumable state
  (see :mod:`medswin.training.state`; no pickles);
* ``metrics.csv`` -- one row per epoch; ``pipeline.json`` -- the settings as run;
* ``tensorboard/`` -- when the ``tensorboard`` package is installed.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from medswin.data.manifest import CaseEntry, Datalist, load_datalist
from medswin.distributed import DistContext, all_gather, barrier, setup_distributed
from medswin.errors import CheckpointError, ManifestError, MedSwinError
from medswin.metrics.overlap import structure_dice
from medswin.models.card import ModelCard
from medswin.tasks import TaskKind, task_for
from medswin.training.config import Pipeline
from medswin.training.state import STATE_JSON, TrainingState, load_training_state, save_training_state

__all__ = ["TrainResult", "train", "validate_cases", "structure_names"]

log = logging.getLogger(__name__)

BEST = "best.safetensors"
LAST = "last.safetensors"
METRICS_CSV = "metrics.csv"


@dataclass
class TrainResult:
    """What a run produced (the same on every rank; files are written by rank 0).

    Attributes:
        output: the output folder.
        best_checkpoint: ``best.safetensors`` (or ``None`` if no epoch ran).
        last_checkpoint: ``last.safetensors``.
        epochs: epochs completed in total (including those of a resumed run).
        best_metric / best_epoch: best mean validation Dice and its epoch (``None`` without validation).
        validation: per-structure Dice of the best epoch.
        metrics_csv: the epoch log.
    """

    output: Path
    best_checkpoint: Path | None
    last_checkpoint: Path
    epochs: int
    best_metric: float | None
    best_epoch: int | None
    validation: dict[str, float] = field(default_factory=dict)
    metrics_csv: Path | None = None


# ------------------------------------------------------------------------------ validation
def structure_names(
    card: ModelCard, regions: Sequence[Mapping[str, Any]] | None
) -> dict[str, tuple[int, ...]]:
    """Scored structures: name -> label values (one per foreground label, or the pipeline's regions)."""
    if card.activation == "sigmoid":
        by_name = {r["name"]: tuple(r["labels"]) for r in regions or []}
        return {r.name: by_name[r.name] for r in sorted(card.regions, key=lambda r: r.channel)}
    return {name: (value,) for value, name in sorted(card.labels.items()) if value != 0}


def validate_cases(
    network: Any,
    card: ModelCard,
    cases: Sequence[CaseEntry],
    structures: Mapping[str, tuple[int, ...]],
    *,
    label_remap: Mapping[int, int],
    device: Any = "cpu",
    overlap: float | None = None,
    sw_batch_size: int = 1,
    mode: str = "gaussian",
    precision: str = "fp32",
) -> list[tuple[str, dict[str, float]]]:
    """Segment each case with the Predictor and score it: ``[(case id, {structure: Dice})]``.

    Dice is computed on the case's own grid, against its label (after ``label_remap``); a
    structure absent from both prediction and reference scores 1 (medswin's empty-mask policy).
    """
    from medswin.inference.predictor import Predictor
    from medswin.training.data import read_validation_case

    predictor = Predictor(
        network,
        card=card,
        device=str(device),
        precision=precision,
        overlap=overlap,
        sw_batch_size=sw_batch_size,
        mode=mode,
    )
    results = []
    for entry in cases:
        image, reference = read_validation_case(entry, card, label_remap)
        predicted = predictor.predict(image).labels.array[0]
        results.append((entry.case_id, structure_dice(predicted, reference.array[0], structures)))
    return results


def validate_volume_cases(
    network: Any,
    card: ModelCard,
    cases: Sequence[CaseEntry],
    structures: Mapping[str, tuple[int, ...]],
    settings: Mapping[str, Any],
    **common: Any,
) -> list[tuple[str, dict[str, float]]]:
    """:func:`validate_cases` with the pipeline's ``validation`` section (:data:`medswin.tasks.VOLUME`)."""
    return validate_cases(
        network,
        card,
        cases,
        structures,
        overlap=settings["overlap"],
        sw_batch_size=int(settings["sw_batch_size"]),
        mode=settings["mode"],
        **common,
    )


# ------------------------------------------------------------------------------ helpers
def _datalist(pipeline: Pipeline, datalist: str | Path | None, data_root: str | Path | None) -> Datalist:
    spec = datalist if datalist is not None else pipeline.section("data")["datalist"]
    if spec is None:
        raise ManifestError(
            f"{pipeline.path or pipeline.name}: no datalist; set data.datalist in the pipeline or pass --datalist FILE"
        )
    text = str(spec)
    if "{data_root}" in text:
        if data_root is None:
            raise ManifestError(f"{pipeline.path or pipeline.name}: data.datalist {text!r} needs --data-root")
        path = Path(text.replace("{data_root}", str(data_root)))
    else:
        path = Path(spec) if datalist is not None else pipeline.resolve_path(text)
    return load_datalist(path, data_root, check_files=True)


def _initialise_from(model: Any, spec: Mapping[str, Any], card: ModelCard, source: Path) -> str:
    """Load ``init_from`` weights into ``model``; returns the load report's summary line."""
    from medswin.models.checkpoints import load_foreign_weights, read_state_dict
    from medswin.models.key_maps import KeyMap, default_key_map

    state = read_state_dict(source)
    name = spec.get("key_map")
    if name is None:
        medswin_file = source.suffix == ".safetensors" and all(k in model.state_dict() for k in state)
        name = None if medswin_file else default_key_map(card.architecture)
    key_map: Any = (
        name
        if name is not None
        else KeyMap("medswin", lambda sd, _model, _notes: dict(sd), (), "medswin checkpoint")
    )
    report = load_foreign_weights(model, state, key_map, source=str(source))
    partial = bool(spec.get("partial", False))
    if report.mismatched or not report.loaded or (not partial and (report.missing or report.unexpected)):
        raise CheckpointError(
            f"init_from {source}: does not load cleanly into {card.id!r}.\n{report.summary()}\n"
            "Set init_from.partial: true for weights that fill only part of the model (e.g. self-supervised encoders)."
        )
    log.info("initialised from %s", report.summary())
    return f"{source.name} via key map {report.key_map}: {len(report.loaded)} tensors loaded, {len(report.missing)} kept initial"


def _precision(requested: str, device: Any) -> str:
    if requested == "auto":
        if device.type == "cuda":
            return "fp16"
        from medswin.inference.runtime import cpu_has_native_bf16

        return "bf16" if cpu_has_native_bf16() else "fp32"
    if requested == "fp16" and device.type != "cuda":
        raise MedSwinError("fp16 training needs a GPU; on CPU use --precision bf16 (or fp32)")
    return requested


def _column(name: str) -> str:
    return "val_" + "".join(c if c.isalnum() else "_" for c in name.lower())


def _write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    from medswin.files import write_atomic

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, buffer.getvalue())


def _read_csv(path: Path, up_to_epoch: int) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    with path.open(encoding="utf-8", newline="") as stream:
        return [row for row in csv.DictReader(stream) if int(row["epoch"]) <= up_to_epoch]


@contextlib.contextmanager
def _medswin_errors() -> Iterator[None]:
    """Re-raise a MedSwinError that MONAI wrapped in ``RuntimeError("applying transform ...")``."""
    try:
        yield
    except RuntimeError as error:
        cause: BaseException | None = error
        while cause is not None and not isinstance(cause, MedSwinError):
            cause = cause.__cause__
        if cause is None:
            raise
        raise cause from None


def _batches(loader: Any) -> Iterator[Any]:
    """The loader's batches, with data errors surfacing as the MedSwinError that caused them."""
    iterator = iter(loader)
    while True:
        with _medswin_errors():
            try:
                batch = next(iterator)
            except StopIteration:
                return
        yield batch


@contextlib.contextmanager
def _tensorboard(folder: Path, enabled: bool) -> Iterator[Any]:
    writer = None
    if enabled:
        try:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(folder / "tensorboard"))
        except ImportError:
            log.debug("tensorboard is not installed; metrics go to %s only", METRICS_CSV)
    try:
        yield writer
    finally:
        if writer is not None:
            writer.close()


def _describe_scores(scores: Mapping[str, float], cases: int) -> str:
    parts = ", ".join(f"{k} {v:.4f}" for k, v in scores.items())
    mean = float(np.mean(list(scores.values()))) if scores else float("nan")
    return f"{parts}; mean {mean:.4f} over {cases} validation case(s)"


# ------------------------------------------------------------------------------ train
def train(
    pipeline: Pipeline,
    output: str | Path,
    *,
    data_root: str | Path | None = None,
    datalist: str | Path | None = None,
    resume: bool = False,
    epochs: int | None = None,
    precision: str | None = None,
    device: str | None = None,
    init_from: str | Path | None = None,
) -> TrainResult:
    """Train the pipeline's model; see the module docstring for what is written to ``output``.

    Args:
        pipeline: a loaded pipeline (:func:`medswin.training.config.load_pipeline`).
        output: run folder (created); must not hold another run unless ``resume``.
        data_root: folder the datalist's relative paths refer to (default: the datalist's folder).
        datalist: datalist file instead of the pipeline's ``data.datalist``.
        resume: continue from ``output/last_state.json`` (model, optimiser, schedule, epoch).
        epochs / precision / device / init_from: override the pipeline's settings.

    Raises:
        ManifestError: bad pipeline, datalist or data (missing files, wrong channels, undeclared labels).
        CheckpointError: unloadable ``init_from`` weights or resume state.
    """

    overrides: dict[str, Any] = {}
    if epochs is not None:
        overrides["training"] = {"epochs": int(epochs)}
    if precision is not None:
        overrides.setdefault("training", {})["precision"] = precision
    if device is not None:
        overrides.setdefault("training", {})["device"] = device
    if overrides:
        pipeline = pipeline.with_overrides(**overrides)
    ctx = setup_distributed(pipeline.settings["training"]["device"])
    try:
        return _train(
            pipeline,
            Path(output),
            ctx,
            data_root=data_root,
            datalist_path=datalist,
            resume=resume,
            init_override=init_from,
        )
    finally:
        ctx.close()


@dataclass
class _TrainingData:
    """The cases of a run and the loader over its training cases."""

    datalist: Datalist
    train_cases: list[CaseEntry]
    val_cases: list[CaseEntry]
    card: ModelCard
    structures: dict[str, Any]
    task: TaskKind  # the model family: transforms, loss, validation
    dataset: Any
    sampler: Any
    loader: Any


def _training_data(
    pipeline: Pipeline, ctx: DistContext, datalist_path: str | Path | None, data_root: str | Path | None
) -> _TrainingData:
    """Split the datalist, build the card's transforms, cache the training cases, shard them by rank."""
    import torch
    from monai.data import CacheDataset, DataLoader, list_data_collate
    from monai.transforms import Compose

    settings = pipeline.settings
    run, data_settings, val_settings = settings["training"], settings["data"], settings["validation"]
    seed = int(run["seed"])
    datalist = _datalist(pipeline, datalist_path, data_root)
    train_cases, val_cases = datalist.split(data_settings["fold"])
    if not train_cases:
        raise ManifestError(f"{datalist.path}: no training cases")
    if val_settings["max_cases"] is not None:
        val_cases = val_cases[: val_settings["max_cases"]]
    card = pipeline.base_card()
    structures = structure_names(card, data_settings["regions"])
    region_sets = list(structures.values()) if card.activation == "sigmoid" else None
    task = task_for(card)
    deterministic, random = task.train_transforms(card, settings, region_sets)
    torch.manual_seed(seed)
    with _medswin_errors():
        dataset = CacheDataset(
            [{"case": e} for e in train_cases],
            Compose([*deterministic.transforms, *random.transforms]),
            cache_rate=float(data_settings["cache_rate"]),
            num_workers=max(1, int(data_settings["num_workers"])),
            progress=False,
        )
    sampler = None
    if ctx.world > 1:
        from torch.utils.data.distributed import DistributedSampler

        sampler = DistributedSampler(dataset, num_replicas=ctx.world, rank=ctx.rank, shuffle=True, seed=seed)
    loader = DataLoader(
        dataset,
        batch_size=int(run["batch_size"]),
        shuffle=sampler is None,
        sampler=sampler,
        num_workers=int(data_settings["num_workers"]),
        collate_fn=list_data_collate,
        generator=torch.Generator().manual_seed(seed),
    )
    return _TrainingData(datalist, train_cases, val_cases, card, structures, task, dataset, sampler, loader)


@dataclass
class _Progress:
    """Where a run stands: restored from ``last_state`` on resume, advanced every epoch."""

    epoch: int = 0
    global_step: int = 0
    best_metric: float | None = None
    best_epoch: int | None = None
    best_scores: dict[str, float] = field(default_factory=dict)


def _restore(
    output: Path, pipeline: Pipeline, model: Any, optimizer: Any, scheduler: Any, scaler: Any
) -> _Progress:
    """Load the last state of the run in ``output`` into the model, optimiser, schedule and scaler."""
    from medswin.models.checkpoints import load_checkpoint, read_checkpoint_card

    state = load_training_state(output)
    resumed, _ = load_checkpoint(output / LAST)
    model.load_state_dict(resumed.state_dict(), strict=True)
    optimizer.load_state_dict(state.optimizer)
    # the schedule's shape follows this run's epochs (which --epochs may have changed); only its position is restored
    scheduler.load_state_dict({**state.scheduler, "lr_lambdas": [None] * len(scheduler.lr_lambdas)})
    if scaler is not None and state.scaler:
        scaler.load_state_dict(state.scaler)
    progress = _Progress(state.epoch, state.global_step, state.best_metric, state.best_epoch)
    if state.pipeline_sha256 and state.pipeline_sha256 != pipeline.text_sha256:
        log.warning(
            "%s: the pipeline file changed since this run started; continuing with the new settings",
            pipeline.path,
        )
    if progress.best_metric is not None and (output / BEST).is_file():
        scores = read_checkpoint_card(output / BEST).provenance.get("validation_dice_json", "{}")
        progress.best_scores = json.loads(scores)
    log.info("resuming %s after epoch %d (step %d)", output, progress.epoch, progress.global_step)
    return progress


def _provenance(
    pipeline: Pipeline,
    data: _TrainingData,
    precision: str,
    world: int,
    progress: _Progress,
    scores: Mapping[str, float],
    scored_epoch: int | None,
    init_note: str,
) -> dict[str, str]:
    """The card provenance of a checkpoint saved after ``progress.epoch``: how it was made."""
    from medswin import __version__

    settings = pipeline.settings
    run, data_settings = settings["training"], settings["data"]
    opt, sched, loss = settings["optimizer"], settings["scheduler"], settings["loss"]
    samples = data.task.samples(data.card, settings)
    info = {
        **data.card.provenance,
        "pipeline": f"{pipeline.name} ({pipeline.path.name if pipeline.path else 'in memory'}, sha256 {pipeline.text_sha256[:12]})",
        "training": (
            f"medswin train: {progress.epoch} of {int(run['epochs'])} epochs, {progress.global_step} steps, "
            f"{world} process(es), {opt['type']} lr {opt['lr']:g} wd {opt['weight_decay']:g}"
            + (f" (none for {', '.join(opt['no_weight_decay'])})" if opt.get("no_weight_decay") else "")
            + f", {sched['type']} schedule "
            f"(warm-up {sched['warmup_epochs']:g} epochs), loss {loss['type']}, batch {run['batch_size']} x "
            f"{samples}, precision {precision}"
        ),
        "epochs": str(progress.epoch),
        "datalist": f"{data.datalist.path.name if data.datalist.path else 'in memory'}"
        + (f", fold {data_settings['fold']}" if data_settings["fold"] is not None else "")
        + f": {len(data.train_cases)} training / {len(data.val_cases)} validation case(s)",
        "seed": str(int(run["seed"])),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "medswin_version": __version__,
    }
    if scores:
        info["validation_dice"] = f"epoch {scored_epoch}: " + _describe_scores(scores, len(data.val_cases))
        info["validation_dice_json"] = json.dumps({k: round(v, 6) for k, v in scores.items()})
    else:
        info["validation_dice"] = "not measured (no validation cases)"
    if init_note:
        info["init_from"] = init_note
    info["sources"] = "; ".join(f"{k}: {v}" for k, v in settings["sources"].items())
    return info


def _optimise(
    model: Any,
    loader: Any,
    batch_loss: Any,
    optimizer: Any,
    scheduler: Any,
    scaler: Any,
    max_grad_norm: float | None,
) -> list[float]:
    """One pass over ``loader``: a step of the optimiser and the schedule per batch; the batch losses."""
    import torch

    losses = []
    for batch in _batches(loader):
        loss = batch_loss(batch)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
        else:
            loss.backward()
        if max_grad_norm:
            torch.nn.utils.clip_grad_norm_(model.parameters(), float(max_grad_norm))
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        scheduler.step()
        losses.append(float(loss.detach()))
    return losses


@dataclass
class _Run:
    """Everything an epoch needs, built once by :func:`_set_up` (on every rank)."""

    pipeline: Pipeline
    output: Path
    ctx: DistContext
    data: _TrainingData
    precision: str
    model: Any  # the module whose weights are saved
    network: Any  # what is trained: the model, or its DistributedDataParallel wrapper
    optimizer: Any
    scheduler: Any
    scaler: Any
    step_loss: Any  # task.loss: the loss of one batch
    progress: _Progress
    init_note: str
    columns: list[str]
    rows: list[dict[str, Any]]

    @property
    def run_settings(self) -> Mapping[str, Any]:
        return self.pipeline.settings["training"]

    @property
    def total_epochs(self) -> int:
        return int(self.run_settings["epochs"])


def _train(
    pipeline: Pipeline,
    output: Path,
    ctx: DistContext,
    *,
    data_root: str | Path | None,
    datalist_path: str | Path | None,
    resume: bool,
    init_override: str | Path | None,
) -> TrainResult:
    """Set up, then per epoch: train, validate when due, save; the result once every epoch ran."""
    run = _set_up(pipeline, output, ctx, data_root, datalist_path, resume, init_override)
    progress = run.progress
    start_epoch = progress.epoch
    last_scores: dict[str, float] = dict(progress.best_scores)
    with _tensorboard(output, ctx.main) as board:
        for epoch in range(start_epoch + 1, run.total_epochs + 1):
            tick = time.perf_counter()
            row, mean_loss = _train_epoch(run, epoch)
            validated = bool(run.data.val_cases) and (
                epoch % int(run.run_settings["val_every"]) == 0 or epoch == run.total_epochs
            )
            improved = False
            if validated:
                last_scores = _validate_epoch(run, epoch)
                score = float(np.mean(list(last_scores.values())))
                row["val_dice_mean"] = f"{score:.6f}"
                row.update({_column(n): f"{v:.6f}" for n, v in last_scores.items()})
                improved = progress.best_metric is None or score > progress.best_metric
                if improved:
                    progress.best_metric, progress.best_epoch = score, epoch
                    progress.best_scores = dict(last_scores)
            elif not run.data.val_cases:
                improved = True  # without validation the latest epoch is the one kept
                progress.best_epoch = epoch
            row["epoch_seconds"] = f"{time.perf_counter() - tick:.2f}"
            run.rows.append(row)
            log.info(
                "epoch %d/%d: loss %.4f, lr %.3g, %s s",
                epoch,
                run.total_epochs,
                mean_loss,
                run.optimizer.param_groups[0]["lr"],
                row["epoch_seconds"],
            )
            if ctx.main:
                _save_epoch(run, epoch, improved, last_scores, validated)
                if board is not None:
                    board.add_scalar("train/loss", mean_loss, epoch)
                    board.add_scalar("train/lr", run.optimizer.param_groups[0]["lr"], epoch)
                    for name, value in last_scores.items() if validated else ():
                        board.add_scalar(f"val/dice_{name}", value, epoch)
            barrier(ctx)
    best = output / BEST
    return TrainResult(
        output=output,
        best_checkpoint=best if best.exists() or progress.best_epoch is not None else None,
        last_checkpoint=output / LAST,
        epochs=max(progress.epoch, start_epoch),
        best_metric=progress.best_metric,
        best_epoch=progress.best_epoch,
        validation=progress.best_scores,
        metrics_csv=output / METRICS_CSV,
    )


def _set_up(
    pipeline: Pipeline,
    output: Path,
    ctx: DistContext,
    data_root: str | Path | None,
    datalist_path: str | Path | None,
    resume: bool,
    init_override: str | Path | None,
) -> _Run:
    """Data, model, optimiser, schedule and loss; the state of a resumed run; ``pipeline.json`` (rank 0)."""

    settings = pipeline.settings
    run = settings["training"]
    if ctx.device.type == "cpu":
        from medswin.inference.runtime import configure_cpu_runtime

        configure_cpu_runtime()
    precision = _precision(run["precision"], ctx.device)
    if not resume and (output / STATE_JSON).exists():
        raise MedSwinError(
            f"{output}: already holds a training run; pass --resume to continue it or choose another --output"
        )
    data = _training_data(pipeline, ctx, datalist_path, data_root)
    card = data.card

    model, optimizer, scheduler, scaler, init_note = _model_and_optimiser(
        pipeline, data, ctx, precision, resume, init_override
    )
    step_loss = data.task.loss(settings, card)

    progress = _restore(output, pipeline, model, optimizer, scheduler, scaler) if resume else _Progress()
    network = model
    if ctx.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        network = DistributedDataParallel(
            model,
            device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None,
            find_unused_parameters=bool(run["find_unused_parameters"]),
        )

    columns = [
        "epoch",
        "global_step",
        "lr",
        "train_loss",
        "val_dice_mean",
        *(_column(n) for n in data.structures),
        "epoch_seconds",
        "world_size",
    ]
    rows = _read_csv(output / METRICS_CSV, progress.epoch) if resume else []
    if ctx.main:
        output.mkdir(parents=True, exist_ok=True)
        from medswin.data.manifest import write_json

        write_json(
            output / "pipeline.json",
            {
                "pipeline": str(pipeline.path or pipeline.name),
                "sha256": pipeline.text_sha256,
                "settings": settings,
            },
        )
    barrier(ctx)
    return _Run(
        pipeline,
        output,
        ctx,
        data,
        precision,
        model,
        network,
        optimizer,
        scheduler,
        scaler,
        step_loss,
        progress,
        init_note,
        columns,
        rows,
    )


def _model_and_optimiser(
    pipeline: Pipeline,
    data: _TrainingData,
    ctx: DistContext,
    precision: str,
    resume: bool,
    init_override: str | Path | None,
) -> tuple[Any, Any, Any, Any, str]:
    """``(model, optimiser, schedule, gradient scaler or None, init note)``; a new run starts from
    ``init_from`` when given (``init note`` says from what)."""
    import torch

    from medswin.training.objectives import build_optimizer, build_scheduler

    settings, card = pipeline.settings, data.card
    run = settings["training"]
    model = card.create_model(use_checkpoint=True) if run["gradient_checkpointing"] else card.create_model()
    init_note = ""
    init_spec = dict(settings["model"].get("init_from") or {})
    if init_override is not None:
        init_spec = {**init_spec, "checkpoint": str(init_override)}
    # init_from.checkpoint null: the key map and partial setting wait for --init-from
    if init_spec.get("checkpoint") and not resume:
        source = Path(init_override) if init_override else pipeline.resolve_path(init_spec["checkpoint"])
        init_note = _initialise_from(model, init_spec, card, source)
    model = model.to(ctx.device)
    optimizer = build_optimizer(settings["optimizer"], model)
    scheduler = build_scheduler(
        settings["scheduler"],
        optimizer,
        steps_per_epoch=len(data.loader),
        epochs=int(run["epochs"]),
        base_lr=float(settings["optimizer"]["lr"]),
    )
    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
    return model, optimizer, scheduler, scaler, init_note


def _train_epoch(run: _Run, epoch: int) -> tuple[dict[str, Any], float]:
    """One pass over the training cases: ``(the epoch's metrics row so far, mean loss over every rank)``."""
    from medswin.inference.runtime import autocast

    ctx, data, seed = run.ctx, run.data, int(run.run_settings["seed"])
    run.network.train()
    if data.sampler is not None:
        data.sampler.set_epoch(epoch)
    data.dataset.transform.set_random_state(seed=(seed + 7919 * epoch + 104729 * ctx.rank) % (2**32))

    def batch_loss(batch: Mapping[str, Any]) -> Any:
        return run.step_loss(run.network, batch, ctx.device, autocast(run.precision, ctx.device.type))

    losses = _optimise(
        run.model,
        data.loader,
        batch_loss,
        run.optimizer,
        run.scheduler,
        run.scaler,
        run.run_settings["max_grad_norm"],
    )
    run.progress.epoch = epoch
    run.progress.global_step += len(losses)
    mean_loss = float(np.mean([v for part in all_gather(losses, ctx) for v in part]))
    row: dict[str, Any] = {
        "epoch": epoch,
        "global_step": run.progress.global_step,
        "lr": f"{run.optimizer.param_groups[0]['lr']:.6g}",
        "train_loss": f"{mean_loss:.6f}",
        "world_size": ctx.world,
    }
    return row, mean_loss


def _validate_epoch(run: _Run, epoch: int) -> dict[str, float]:
    """Predict this rank's share of the validation cases as users would; mean Dice per structure, all ranks."""
    ctx, data = run.ctx, run.data
    settings = run.pipeline.settings
    run.optimizer.zero_grad(set_to_none=True)  # free the gradients while predicting
    shard = data.val_cases[ctx.rank :: ctx.world]
    results = data.task.validate(
        run.model,
        data.card,
        shard,
        data.structures,
        settings["validation"],
        label_remap=settings["data"]["label_remap"],
        device=ctx.device,
        precision="bf16" if run.precision == "bf16" else "fp32",
    )
    run.network.train()
    merged = [item for part in all_gather(results, ctx) for item in part]
    scores = {name: float(np.mean([s[name] for _, s in merged])) for name in data.structures}
    log.info("epoch %d validation: %s", epoch, _describe_scores(scores, len(merged)))
    return scores


def _save_epoch(
    run: _Run, epoch: int, improved: bool, last_scores: Mapping[str, float], validated: bool
) -> None:
    """Rank 0: ``best`` when improved; ``last`` and the resumable state when due; the metrics CSV.

    ``last_scores`` are the latest validation's (``validated``: this epoch's), recorded in ``last``.
    """
    from medswin.models.checkpoints import save_checkpoint

    progress, output = run.progress, run.output

    def save(path: Path, scores: Mapping[str, float], scored_epoch: int | None) -> None:
        info = _provenance(
            run.pipeline,
            run.data,
            run.precision,
            run.ctx.world,
            progress,
            scores,
            scored_epoch,
            run.init_note,
        )
        save_checkpoint(run.model, run.data.card.replace(provenance=info), path)

    if improved:
        save(output / BEST, progress.best_scores, progress.best_epoch)
    if epoch % int(run.run_settings["save_every"]) == 0 or epoch == run.total_epochs:
        save(output / LAST, last_scores, epoch if validated else None)
        save_training_state(
            output,
            TrainingState(
                epoch=epoch,
                global_step=progress.global_step,
                best_metric=progress.best_metric,
                best_epoch=progress.best_epoch,
                optimizer=run.optimizer.state_dict(),
                scheduler=run.scheduler.state_dict(),
                scaler=run.scaler.state_dict() if run.scaler is not None else {},
                pipeline_sha256=run.pipeline.text_sha256,
            ),
        )
    _write_csv(output / METRICS_CSV, run.rows, run.columns)
