"""What differs between model families, in one object per family, chosen once from the card.

A model family is what a network takes in and gives out: a **volume** model (SwinUNETR, Swin-UNet)
segments an image on its own grid; a **biplanar** model (Swin-X2S) turns an AP and a lateral
radiograph into a label volume. Everything that follows from that (which predictor runs it, its
training transforms, loss and validation, the tensors an exported network has) is a member of its :class:`TaskKind`. Code asks :func:`task_for` once and calls the members,
instead of testing the card for a family at each place; a new family is one more :class:`TaskKind`
in :data:`TASKS` (docs/architecture.md, "Adding a model family").

Importing this module imports no torch and no family code: members import theirs when called, so
the library layers (``models``, ``inference``) can ask a card's family without importing training.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from medswin.errors import MedSwinError

if TYPE_CHECKING:
    from medswin.models.card import ModelCard

__all__ = ["TaskKind", "TASKS", "VOLUME", "BIPLANAR", "task_for", "require_task"]

#: ``{input name: shape}, {output name: shape}`` of a network for a batch of windows
NetworkIO = tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]]]
#: ``step(network, batch, device, autocast) -> loss``: the training loss of one batch
StepLoss = Callable[[Any, Mapping[str, Any], Any, Any], Any]
#: ``[(case id, {structure: Dice})]`` of validation cases
Scores = list[tuple[str, dict[str, float]]]


@dataclass(frozen=True)
class TaskKind:
    """One model family: how its models are recognised, run, trained and exported.

    Attributes:
        name: ``"volume"``, ``"biplanar"`` ...
        claims: whether a card describes a model of this family (:func:`task_for` asks each in turn).
        takes: what its models do, for messages (``"segments volumes"``).
        run_with: how users run its models, for messages.
        predictor: the predictor class (imported when called).
        image_channels: whether a case's image channels are the card's ``channels`` (a biplanar case
            is two one-channel films instead), so :func:`~medswin.models.fit.check_fit` compares them.
        network_io: ``(card, batch size) -> (inputs, outputs)`` names and shapes of the exported network.
        check_pipeline: ``(settings, source)``: refuses training settings that mean nothing here.
        train_transforms: ``(card, settings, region label sets) -> (deterministic, random)`` chains.
        loss: ``(settings, card) -> step loss`` of one training batch.
        validate: ``(network, card, cases, structures, validation settings, label_remap=, device=,
            precision=)`` -> Dice per case and structure, predicted with the family's predictor.
        samples: ``(card, settings)`` -> what one training sample is, for the checkpoint's provenance.
    """

    name: str
    claims: Callable[[ModelCard], bool]
    takes: str
    run_with: str
    predictor: Callable[[], type]
    image_channels: bool
    network_io: Callable[[ModelCard, int], NetworkIO]
    check_pipeline: Callable[[Mapping[str, Any], str], None]
    train_transforms: Callable[
        [ModelCard, Mapping[str, Any], Sequence[tuple[int, ...]] | None], tuple[Any, Any]
    ]
    loss: Callable[[Mapping[str, Any], ModelCard], StepLoss]
    validate: Callable[..., Scores]
    samples: Callable[[ModelCard, Mapping[str, Any]], str]

    def __repr__(self) -> str:
        return f"TaskKind({self.name!r})"


def _later(reference: str) -> Callable[..., Any]:
    """``"module:name"`` as a callable that imports the module on first call: a family's code
    (inference, training) loads only when used, and this module stays below both in the layers."""
    module, name = reference.split(":")

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    call.__qualname__ = call.__name__ = name
    return call


def _class(reference: str) -> Callable[[], type]:
    module, name = reference.split(":")
    return lambda: getattr(importlib.import_module(module), name)


# ------------------------------------------------------------------------------ volume
def _volume_io(card: ModelCard, batch_size: int) -> NetworkIO:
    roi = tuple(int(r) for r in card.roi_size)
    return (
        {"image": (batch_size, len(card.channels), *roi)},
        {"logits": (batch_size, card.num_classes, *roi)},
    )


def _volume_samples(card: ModelCard, settings: Mapping[str, Any]) -> str:
    crop = settings["augmentation"]["crop"]
    return f"{crop['num_samples']} crop(s) of {list(crop['roi_size'] or card.roi_size)}"


VOLUME = TaskKind(
    name="volume",
    claims=lambda card: card.radiographs is None,
    takes="segments volumes",
    run_with="medswin predict (or medswin.inference.Predictor)",
    predictor=_class("medswin.inference.predictor:Predictor"),
    image_channels=True,
    network_io=_volume_io,
    check_pipeline=lambda settings, source: None,  # every training setting applies to volumes
    train_transforms=_later("medswin.training.data:build_train_transforms"),
    loss=_later("medswin.training.objectives:volume_step_loss"),
    validate=_later("medswin.training.trainer:validate_volume_cases"),
    samples=_volume_samples,
)


# ------------------------------------------------------------------------------ biplanar
def _biplanar_io(card: ModelCard, batch_size: int) -> NetworkIO:
    x, y, z = (int(r) for r in card.roi_size)
    volume = (batch_size, card.num_classes, x, y, z)
    return (
        {"ap": (batch_size, 1, x, z), "lateral": (batch_size, 1, y, z)},
        {"logits_ap": volume, "logits_lateral": volume},
    )


def _biplanar_samples(card: ModelCard, settings: Mapping[str, Any]) -> str:
    return (
        f"an AP + lateral pair -> {list(card.roi_size)} labels, loss weight of the mutual KL "
        f"{settings['loss']['mutual_weight']:g}"
    )


BIPLANAR = TaskKind(
    name="biplanar",
    claims=lambda card: card.radiographs is not None,
    takes="turns an AP and a lateral radiograph into a volume",
    run_with="medswin x2s predict --ap AP --lateral LAT (or medswin.inference.x2s.X2SPredictor)",
    predictor=_class("medswin.inference.x2s:X2SPredictor"),
    image_channels=False,
    network_io=_biplanar_io,
    check_pipeline=_later("medswin.training.biplanar:check_biplanar_settings"),
    train_transforms=_later("medswin.training.biplanar:build_biplanar_transforms"),
    loss=_later("medswin.training.biplanar:biplanar_step_loss"),
    validate=_later("medswin.training.biplanar:validate_biplanar_cases"),
    samples=_biplanar_samples,
)

#: every family, asked in this order; the first whose ``claims`` holds is the card's
TASKS: tuple[TaskKind, ...] = (BIPLANAR, VOLUME)


def task_for(card: ModelCard) -> TaskKind:
    """The family of the model ``card`` describes."""
    for task in TASKS:
        if task.claims(card):
            return task
    raise MedSwinError(f"model {card.id!r} ({card.architecture}): no model family claims its card")


def require_task(card: ModelCard, task: TaskKind) -> None:
    """Refuse a model of another family than ``task`` (e.g. an X-ray model given to the volume predictor)."""
    actual = task_for(card)
    if actual is not task:
        raise MedSwinError(
            f"model {card.id!r} ({card.architecture}) {actual.takes}, not what {task.predictor().__name__} "
            f"runs; run it with {actual.run_with}"
        )
