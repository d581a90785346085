"""Training pipelines as validated documents (``pipelines/train/*.yaml``).

A pipeline names the model card to train (a preset id or a card file), the datalist, the
augmentation, loss, optimiser, schedule and validation settings, and where each setting comes
from (``sources``). It is checked against ``medswin/data/schemas/pipeline.schema.json``; settings
a pipeline leaves out take the values of :data:`DEFAULTS`. Relative paths are relative to the
pipeline file, so the recipes in the repository find the manifests in ``data_manifests/``.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medswin.data.manifest import validate_document
from medswin.errors import ManifestError, MedSwinError
from medswin.models.card import ModelCard, load_card, preset_card
from medswin.tasks import task_for

__all__ = ["DEFAULTS", "Pipeline", "load_pipeline", "parse_pipeline"]

#: values of settings a pipeline does not give (MONAI research-contributions BTCV defaults where they exist).
DEFAULTS: dict[str, Any] = {
    "data": {
        "datalist": None,
        "fold": None,
        "label_remap": {},
        "regions": None,
        "crop_foreground": False,
        "cache_rate": 1.0,
        "num_workers": 0,
    },
    "augmentation": {
        "crop": {"type": "pos_neg", "roi_size": None, "num_samples": 1, "pos": 1.0, "neg": 1.0},
        "flip": {"prob": 0.0, "axes": [0, 1, 2]},
        "rotate90": {"prob": 0.0, "max_k": 3},
        "rotate": {"prob": 0.0, "range_deg": 0.0},
        "scale_intensity": {"prob": 0.0, "factor": 0.1},
        "shift_intensity": {"prob": 0.0, "offset": 0.1},
        "view_shift": {"prob": 0.0, "divisors": [20.0, 20.0, 50.0]},
    },
    "loss": {
        "type": "dice_ce",
        "include_background": True,
        "squared_pred": False,
        "batch": False,
        "lambda_dice": 1.0,
        "lambda_ce": 1.0,
        "mutual_weight": 1.0,
    },
    "optimizer": {
        "type": "adamw",
        "lr": 1e-4,
        "weight_decay": 1e-5,
        "momentum": 0.9,
        "nesterov": False,
        "no_weight_decay": [],
    },
    "scheduler": {"type": "warmup_cosine", "warmup_epochs": 0, "power": 0.9, "min_lr": 0.0},
    "training": {
        "batch_size": 1,
        "val_every": 1,
        "save_every": 1,
        "precision": "auto",
        "gradient_checkpointing": False,
        "max_grad_norm": None,
        "seed": 0,
        "device": "auto",
        "find_unused_parameters": False,
    },
    "validation": {"overlap": None, "sw_batch_size": 1, "mode": "gaussian", "max_cases": None},
}


#: provenance entries of the base card that still hold for a model trained from it (they describe the card, not weights).
_CARD_PROVENANCE_KEPT = ("labels", "channels", "regions", "preprocessing", "geometry", "colors")


def _merge(defaults: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(defaults)
    for key, value in given.items():
        if (
            isinstance(value, dict)
            and isinstance(merged.get(key), dict)
            and key not in ("label_remap", "config")
        ):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


@dataclass
class Pipeline:
    """A validated training pipeline with defaults filled in.

    Attributes:
        name: pipeline name (also the trained model's card id unless ``model.id`` is set).
        path: the YAML file (``None`` for pipelines built in memory); relative paths refer to its folder.
        settings: every section (``model``, ``data``, ``augmentation``, ``loss``, ``optimizer``,
            ``scheduler``, ``training``, ``validation``, ``sources``) with defaults filled in.
        text_sha256: hash of the document as written, recorded in checkpoints and resume state.
    """

    name: str
    path: Path | None
    settings: dict[str, Any]
    text_sha256: str

    def section(self, name: str) -> dict[str, Any]:
        return self.settings[name]

    def resolve_path(self, value: str | Path) -> Path:
        """``value`` relative to the pipeline's folder (absolute paths and ``~`` kept)."""
        path = Path(value).expanduser()
        if path.is_absolute() or self.path is None:
            return path
        return self.path.parent / path

    @property
    def model_id(self) -> str:
        return self.settings["model"].get("id") or self.name

    def base_card(self) -> ModelCard:
        """The card named in ``model.card``, with ``model.config`` overrides applied and the new id."""
        spec = self.settings["model"]["card"]
        try:
            card = load_card(self.resolve_path(spec)) if spec.endswith(".json") else preset_card(spec)
        except MedSwinError as error:
            raise ManifestError(f"{self.path or self.name}: model.card {spec!r}: {error}") from None
        overrides = dict(self.settings["model"].get("config", {}))
        if "use_checkpoint" in overrides:
            raise ManifestError(
                f"{self.path or self.name}: set gradient checkpointing with training.gradient_checkpointing, "
                "not model.config.use_checkpoint (it is a training-time switch, not part of the model)"
            )
        kept = {k: v for k, v in card.provenance.items() if k in _CARD_PROVENANCE_KEPT}
        changes: dict[str, Any] = {
            "id": self.model_id,
            "config": {**card.config, **overrides},
            "provenance": kept,
        }
        if self.settings["model"].get("description"):
            changes["description"] = self.settings["model"]["description"]
        try:
            return card.replace(**changes)
        except MedSwinError as error:
            raise ManifestError(
                f"{self.path or self.name}: model.config makes an invalid card: {error}"
            ) from None

    def with_overrides(self, **sections: dict[str, Any]) -> Pipeline:
        """A copy with some settings replaced, e.g. ``with_overrides(training={"epochs": 2})``."""
        settings = _merge(self.settings, sections)
        return Pipeline(self.name, self.path, settings, self.text_sha256)


def parse_pipeline(
    data: Any, *, source: str = "<pipeline>", path: Path | None = None, text: str | None = None
) -> Pipeline:
    """Validate a pipeline document (already parsed from YAML) and fill in defaults."""
    validate_document(data, "pipeline", source)
    settings = _merge(DEFAULTS, data)
    settings["data"]["label_remap"] = {int(k): int(v) for k, v in settings["data"]["label_remap"].items()}
    digest = hashlib.sha256(
        (text if text is not None else json.dumps(data, sort_keys=True)).encode()
    ).hexdigest()
    pipeline = Pipeline(data["name"], path, settings, digest)
    _cross_checks(pipeline, source)
    return pipeline


def _cross_checks(pipeline: Pipeline, source: str) -> None:
    """Rules between sections that the schema cannot express."""
    card = pipeline.base_card()
    regions = pipeline.settings["data"]["regions"]
    if card.activation == "sigmoid":
        if not regions:
            raise ManifestError(
                f"{source}: card {card.id!r} has sigmoid region outputs; data.regions must say which labels make each "
                f"region ({', '.join(r.name for r in card.regions)})"
            )
        names = sorted(r["name"] for r in regions)
        if names != sorted(r.name for r in card.regions):
            raise ManifestError(
                f"{source}: data.regions {names} must name the card's regions {sorted(r.name for r in card.regions)}"
            )
    elif regions:
        raise ManifestError(
            f"{source}: data.regions is only for sigmoid (region) cards; card {card.id!r} is softmax"
        )
    roi = pipeline.settings["augmentation"]["crop"]["roi_size"]
    if roi is not None and len(roi) != card.spatial_dims:
        raise ManifestError(
            f"{source}: augmentation.crop.roi_size {roi} has {len(roi)} axes; the model is {card.spatial_dims}D"
        )
    task_for(card).check_pipeline(pipeline.settings, source)
    precision = pipeline.settings["training"]["precision"]
    if precision == "fp16" and pipeline.settings["training"]["device"] == "cpu":
        raise ManifestError(f"{source}: fp16 training needs a GPU; use precision bf16 (or fp32) on CPU")


def load_pipeline(path: str | Path) -> Pipeline:
    """Read and validate a pipeline YAML file."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(f"{path}: no such pipeline file") from None
    except OSError as error:
        raise ManifestError(f"{path}: cannot read ({error.strerror or error})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ManifestError(f"{path}: not valid YAML ({error})") from None
    return parse_pipeline(data, source=str(path), path=path, text=text)
