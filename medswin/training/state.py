"""Resumable training state without pickles: tensors in safetensors, everything else in JSON.

``<output>/last.safetensors`` is an ordinary medswin checkpoint (weights + card), loadable by the
Predictor. Beside it, ``last_state.safetensors`` holds the optimiser's tensors (Adam moments,
momentum buffers, step counts) and ``last_state.json`` the rest: epoch, global step, best
validation score, optimiser hyperparameters, scheduler and gradient-scaler state. The JSON is
written last and names the epoch stored in the tensor file's metadata, so a crash between the two
writes is detected instead of resuming from mismatched files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medswin.errors import CheckpointError

__all__ = [
    "TrainingState",
    "flatten_optimizer_state",
    "load_training_state",
    "save_training_state",
    "unflatten_optimizer_state",
]

STATE_TENSORS = "last_state.safetensors"
STATE_JSON = "last_state.json"
STATE_FORMAT = "medswin-training-state"
STATE_VERSION = 1


@dataclass
class TrainingState:
    """Where a run stands after ``epoch`` completed epochs.

    Attributes:
        epoch: completed epochs (training resumes at ``epoch + 1``).
        global_step: optimiser steps taken.
        best_metric: best mean validation Dice so far (``None`` before the first validation).
        best_epoch: the epoch that reached it.
        optimizer: ``optimizer.state_dict()`` (tensors included).
        scheduler: ``scheduler.state_dict()`` (plain numbers).
        scaler: ``GradScaler.state_dict()`` for fp16 runs, else empty.
        pipeline_sha256: hash of the pipeline text the run was started with.
    """

    epoch: int
    global_step: int
    best_metric: float | None
    best_epoch: int | None
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    scaler: dict[str, Any] = field(default_factory=dict)
    pipeline_sha256: str = ""


def flatten_optimizer_state(state_dict: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``optimizer.state_dict()`` -> ``(tensors keyed "state.<param>.<name>", JSON-ready rest)``."""
    import torch

    tensors: dict[str, Any] = {}
    plain_state: dict[str, dict[str, Any]] = {}
    for index, entry in state_dict["state"].items():
        for name, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{index}.{name}"] = value.detach().to("cpu").contiguous()
            else:
                plain_state.setdefault(str(index), {})[name] = value
    return tensors, {"param_groups": state_dict["param_groups"], "state": plain_state}


def unflatten_optimizer_state(tensors: dict[str, Any], plain: dict[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`flatten_optimizer_state`."""
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = value
    for index, entry in plain.get("state", {}).items():
        state.setdefault(int(index), {}).update(entry)
    return {"state": state, "param_groups": plain["param_groups"]}


def _json_ready(value: Any, where: str) -> Any:
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as error:
        raise CheckpointError(
            f"{where} is not plain data and cannot be stored without pickling ({error})"
        ) from None


def _atomic_write(path: Path, write: Any) -> None:
    from medswin.files import atomic_output

    with atomic_output(path) as temporary:
        write(str(temporary))


def save_training_state(folder: str | Path, state: TrainingState) -> None:
    """Write ``last_state.safetensors`` then ``last_state.json`` into ``folder``, each atomically."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors, plain_optimizer = flatten_optimizer_state(state.optimizer)
    metadata = {"format": STATE_FORMAT, "epoch": str(state.epoch)}
    _atomic_write(folder / STATE_TENSORS, lambda tmp: save_file(tensors, tmp, metadata=metadata))
    document = {
        "format": STATE_FORMAT,
        "version": STATE_VERSION,
        "epoch": state.epoch,
        "global_step": state.global_step,
        "best_metric": state.best_metric,
        "best_epoch": state.best_epoch,
        "optimizer": _json_ready(plain_optimizer, "optimizer state"),
        "scheduler": _json_ready(state.scheduler, "scheduler state"),
        "scaler": _json_ready(state.scaler, "gradient scaler state"),
        "pipeline_sha256": state.pipeline_sha256,
    }
    text = json.dumps(document, indent=2)
    _atomic_write(folder / STATE_JSON, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def load_training_state(folder: str | Path) -> TrainingState:
    """Read the state written by :func:`save_training_state`; CheckpointError if missing or inconsistent."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    folder = Path(folder)
    json_path, tensor_path = folder / STATE_JSON, folder / STATE_TENSORS
    if not json_path.is_file() or not tensor_path.is_file():
        raise CheckpointError(
            f"{folder}: no training state to resume ({STATE_JSON} and {STATE_TENSORS} are written after each epoch); "
            "start without --resume"
        )
    try:
        document = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{json_path}: unreadable training state ({error})") from None
    if document.get("format") != STATE_FORMAT or document.get("version") != STATE_VERSION:
        raise CheckpointError(f"{json_path}: not a medswin training state (version {STATE_VERSION})")
    try:
        with safe_open(str(tensor_path), framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
        tensors = load_file(str(tensor_path), device="cpu")
    except Exception as error:  # safetensors raises its own error types
        raise CheckpointError(f"{tensor_path}: unreadable ({error})") from None
    if metadata.get("epoch") != str(document["epoch"]):
        raise CheckpointError(
            f"{folder}: {STATE_TENSORS} is from epoch {metadata.get('epoch')} but {STATE_JSON} from epoch "
            f"{document['epoch']} (interrupted while saving?); resume is not safe"
        )
    return TrainingState(
        epoch=int(document["epoch"]),
        global_step=int(document["global_step"]),
        best_metric=document["best_metric"],
        best_epoch=document["best_epoch"],
        optimizer=unflatten_optimizer_state(tensors, document["optimizer"]),
        scheduler=document["scheduler"],
        scaler=document.get("scaler", {}),
        pipeline_sha256=document.get("pipeline_sha256", ""),
    )
