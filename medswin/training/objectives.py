"""Loss, optimiser and learning-rate schedule built from a pipeline's settings.

Schedules are stepped once per optimiser step and written in fractional epochs, so a recipe's
``warmup_epochs: 50`` means the same on any dataset size:

* ``warmup_cosine``: linear warm-up from 0 over ``warmup_epochs``, then cosine annealing to
  ``min_lr`` at the last step (research-contributions' ``LinearWarmupCosineAnnealingLR``, which
  steps per epoch; here the same curve is followed per step);
* ``poly``: ``lr * (1 - step / total) ** power`` (Swin-Unet / TransUNet);
* ``constant``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from medswin.models.card import ModelCard

__all__ = [
    "LRSchedule",
    "build_loss",
    "build_optimizer",
    "build_scheduler",
    "decay_groups",
    "volume_step_loss",
]


def volume_step_loss(settings: Mapping[str, Any], card: ModelCard) -> Any:
    """The training loss of one batch of a volume model (:data:`medswin.tasks.VOLUME`):
    ``step(network, batch, device, autocast)`` -> :func:`build_loss` of the crops' logits."""
    loss_fn = build_loss(settings["loss"], card)

    def step(network: Any, batch: Mapping[str, Any], device: Any, autocast: Any) -> Any:
        x = batch["image"].to(device, non_blocking=True)
        y = batch["label"].to(device, non_blocking=True)
        with autocast:
            logits = network(x)
        return loss_fn(logits.float(), y)

    return step


def build_loss(settings: Mapping[str, Any], card: ModelCard) -> Any:
    """MONAI loss for the card's activation: softmax with one-hot targets, or sigmoid region masks.

    ``dice_ce`` = ``lambda_dice * Dice + lambda_ce * CE`` (BCE for sigmoid cards); ``dice``; ``ce``.
    """
    from monai.losses import DiceCELoss, DiceLoss

    softmax = card.activation == "softmax"
    common = {
        "include_background": settings["include_background"],
        "to_onehot_y": softmax,
        "softmax": softmax,
        "sigmoid": not softmax,
        "squared_pred": settings["squared_pred"],
        "batch": settings["batch"],
    }
    if settings["type"] == "dice":
        return DiceLoss(**common)
    lambda_dice = 0.0 if settings["type"] == "ce" else float(settings["lambda_dice"])
    return DiceCELoss(**common, lambda_dice=lambda_dice, lambda_ce=float(settings["lambda_ce"]))


def decay_groups(model: Any, decay: float, exempt: Sequence[str]) -> list[dict[str, Any]]:
    """Parameter groups of ``model``: ``exempt`` ones get weight decay 0, the rest ``decay``.

    ``exempt`` rules: ``"1d"`` is every parameter with at most one dimension (biases, norm scales and
    shifts); any other text is a substring of parameter names (e.g. ``relative_position_bias_table``).
    The official Swin-X2S runs (timm's ``param_groups_weight_decay``) exempt those from decay.
    """
    keep, free = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        exempted = any(
            (rule == "1d" and parameter.ndim <= 1) or (rule != "1d" and rule in name) for rule in exempt
        )
        (free if exempted else keep).append(parameter)
    return [{"params": keep, "weight_decay": decay}, {"params": free, "weight_decay": 0.0}]


def build_optimizer(settings: Mapping[str, Any], parameters: Any) -> Any:
    """AdamW, Adam or SGD (with momentum / Nesterov) over ``parameters`` (a module, or an iterable of tensors).

    ``settings["no_weight_decay"]`` (rules of :func:`decay_groups`) needs the module, whose parameter
    names the rules match.
    """
    import torch

    kind, lr, decay = settings["type"], float(settings["lr"]), float(settings["weight_decay"])
    exempt = list(settings.get("no_weight_decay") or [])
    if isinstance(parameters, torch.nn.Module):
        parameters = decay_groups(parameters, decay, exempt) if exempt else parameters.parameters()
    elif exempt:
        raise TypeError(
            "build_optimizer: no_weight_decay needs the model (its parameter names), not bare tensors"
        )
    if kind == "adamw":
        return torch.optim.AdamW(parameters, lr=lr, weight_decay=decay)
    if kind == "adam":
        return torch.optim.Adam(parameters, lr=lr, weight_decay=decay)
    return torch.optim.SGD(
        parameters,
        lr=lr,
        momentum=float(settings["momentum"]),
        weight_decay=decay,
        nesterov=bool(settings["nesterov"]),
    )


class LRSchedule:
    """Multiplier of the base learning rate at optimiser step ``step`` (plain data, so it is saved as JSON).

    Args:
        kind: ``"warmup_cosine"``, ``"poly"`` or ``"constant"``.
        total_steps: optimiser steps of the whole run.
        warmup_steps: linear warm-up steps (``warmup_cosine``).
        power: exponent of ``poly``.
        min_ratio: floor as a fraction of the base rate (``min_lr / lr``).
    """

    def __init__(
        self, kind: str, total_steps: int, warmup_steps: int = 0, power: float = 0.9, min_ratio: float = 0.0
    ) -> None:
        self.kind = kind
        self.total_steps = max(1, int(total_steps))
        self.warmup_steps = max(0, min(int(warmup_steps), self.total_steps - 1))
        self.power = float(power)
        self.min_ratio = float(min_ratio)

    def __call__(self, step: int) -> float:
        if self.kind == "constant":
            return 1.0
        if self.kind == "poly":
            return max(self.min_ratio, (1.0 - min(step, self.total_steps) / self.total_steps) ** self.power)
        if step < self.warmup_steps:  # warmup_cosine
            return (step + 1) / (self.warmup_steps + 1)
        progress = (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps)
        return self.min_ratio + (1.0 - self.min_ratio) * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def build_scheduler(
    settings: Mapping[str, Any], optimizer: Any, *, steps_per_epoch: int, epochs: int, base_lr: float
) -> Any:
    """``LambdaLR`` following :class:`LRSchedule`, stepped after every optimiser step."""
    import torch

    schedule = LRSchedule(
        settings["type"],
        total_steps=steps_per_epoch * epochs,
        warmup_steps=round(float(settings["warmup_epochs"]) * steps_per_epoch),
        power=settings["power"],
        min_ratio=(float(settings["min_lr"]) / base_lr) if base_lr > 0 else 0.0,
    )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
