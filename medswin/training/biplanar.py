"""Training on radiograph pairs (Swin-X2S): what differs from training on volumes.

A case of a biplanar datalist has two images, the AP and the lateral view (2D: DRRs made by
``medswin x2s drr``, or real radiographs), and a label volume already on the model's output grid
(``roi_size`` voxels, 128 × 128 × 160 as published). The chain per case:

1. :class:`LoadViewsd` -- medswin's readers, then :func:`medswin.transforms.radiograph.prepare_view`
   (the normalisation ``medswin x2s predict`` applies to real radiographs), label checked against
   the card; cached;
2. :class:`RandViewShiftd` -- the official random shift: one integer offset
   ``(N(0,1)·X/20, N(0,1)·Y/20, N(0,1)·Z/50)`` moves the AP view by ``(s_x, s_z)``, the lateral view
   by ``(s_y, s_z)`` and the label by ``(s_x, s_y, s_z)``, zero-filled;
3. intensity scale / shift of both views (MONAI ``RandScaleIntensityd`` / ``RandShiftIntensityd``).

The official flip of rows and label axes is not offered: it swaps left and right anatomy while
the labels keep their names (femur_left / femur_right). The loss is
:func:`medswin.models.swin_x2s.swin_x2s_loss` (per-view Dice + CE plus the mutual KL term) and
validation runs the :class:`~medswin.inference.x2s.X2SPredictor` users run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from monai.transforms import MapTransform, Randomizable, Transform

from medswin.data.manifest import CaseEntry
from medswin.errors import ManifestError, MedSwinError
from medswin.io.image import Image
from medswin.models.card import ModelCard

__all__ = [
    "VIEW_KEYS",
    "LoadViewsd",
    "RandViewShiftd",
    "build_biplanar_transforms",
    "check_biplanar_settings",
    "read_biplanar_case",
    "biplanar_loss",
    "biplanar_step_loss",
    "validate_biplanar_cases",
]

VIEW_KEYS = ("ap", "lateral")


def read_biplanar_case(
    entry: CaseEntry, card: ModelCard, remap: Mapping[int, int]
) -> tuple[Image, Image, Image]:
    """``(ap, lateral, label)`` of a datalist case, the label checked to lie on the model's output grid."""
    from medswin.io.readers import read_image
    from medswin.training.data import declared_labels

    if len(entry.images) != 2:
        raise ManifestError(
            f"case {entry.case_id}: a biplanar case has two images (AP, lateral), got {len(entry.images)}"
        )
    if entry.label is None:
        raise ManifestError(f"case {entry.case_id}: no label file; training and validation cases need one")
    try:
        ap, lateral = (read_image(p) for p in entry.images)
        label = read_image(entry.label, kind="label")
    except MedSwinError as error:
        raise ManifestError(f"case {entry.case_id}: {error}") from None
    if tuple(label.shape) != tuple(card.roi_size):
        raise ManifestError(
            f"case {entry.case_id}: label {entry.label} has shape {label.shape}, but model {card.id!r} outputs "
            f"{tuple(card.roi_size)}; make biplanar datasets with medswin x2s drr"
        )
    return ap, lateral, declared_labels(entry, label, card, remap)


class LoadViewsd(Transform):
    """``{"case": CaseEntry}`` -> ``{"ap" (1, X, Z), "lateral" (1, Y, Z), "label" (1, X, Y, Z)}`` arrays."""

    def __init__(self, card: ModelCard, label_remap: Mapping[int, int]) -> None:
        self.card = card
        self.label_remap = dict(label_remap)

    def __call__(self, data: Mapping[str, Any]) -> dict[str, Any]:
        from medswin.transforms.radiograph import prepare_view

        entry: CaseEntry = data["case"]
        ap, lateral, label = read_biplanar_case(entry, self.card, self.label_remap)
        out: dict[str, Any] = {"case_id": entry.case_id, "label": np.asarray(label.array, dtype=np.int64)}
        for key, image in zip(VIEW_KEYS, (ap, lateral)):
            try:
                out[key] = prepare_view(image, key, self.card).array[None]  # type: ignore[arg-type]
            except MedSwinError as error:
                raise ManifestError(f"case {entry.case_id}: {error}") from None
        return out


def _shifted(array: np.ndarray, offsets: Sequence[int]) -> np.ndarray:
    """``array`` moved by integer ``offsets`` along its last axes, vacated voxels 0."""
    out = np.zeros_like(array)
    lead = array.ndim - len(offsets)
    src: list[slice] = [slice(None)] * lead
    dst: list[slice] = [slice(None)] * lead
    for size, shift in zip(array.shape[lead:], offsets):
        shift = int(np.clip(shift, -size, size))
        src.append(slice(max(0, -shift), size - max(0, shift)))
        dst.append(slice(max(0, shift), size - max(0, -shift)))
    out[tuple(dst)] = array[tuple(src)]
    return out


class RandViewShiftd(Randomizable, MapTransform):
    """The official Swin-X2S shift of both views and the label by one random offset (see module docstring)."""

    def __init__(self, prob: float = 1.0, divisors: Sequence[float] = (20.0, 20.0, 50.0)) -> None:
        MapTransform.__init__(self, ("ap", "lateral", "label"))
        self.prob = float(prob)
        self.divisors = tuple(float(d) for d in divisors)
        self._offsets: tuple[int, int, int] | None = None

    def randomize(self, size: Sequence[int]) -> None:
        if self.R.random_sample() >= self.prob:
            self._offsets = None
            return
        normal = self.R.standard_normal(3)
        self._offsets = tuple(int(n * s / d) for n, s, d in zip(normal, size, self.divisors))  # type: ignore[assignment]

    def __call__(self, data: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(data)
        self.randomize(np.asarray(data["label"]).shape[-3:])
        if self._offsets is None:
            return out
        sx, sy, sz = self._offsets
        out["ap"] = _shifted(np.asarray(data["ap"]), (sx, sz))
        out["lateral"] = _shifted(np.asarray(data["lateral"]), (sy, sz))
        out["label"] = _shifted(np.asarray(data["label"]), (sx, sy, sz))
        return out


def check_biplanar_settings(settings: Mapping[str, Any], source: str) -> None:
    """Refuse volume-only augmentations in a biplanar pipeline (they have no meaning for two views)."""
    aug = settings["augmentation"]
    refused = [
        name
        for name, active in (
            ("crop.roi_size", aug["crop"]["roi_size"] is not None),
            ("flip", aug["flip"]["prob"] > 0),
            ("rotate90", aug["rotate90"]["prob"] > 0),
            ("rotate", aug["rotate"]["prob"] > 0),
        )
        if active
    ]
    if refused or settings["data"]["regions"] or settings["data"]["crop_foreground"]:
        raise ManifestError(
            f"{source}: {', '.join(refused or ['data.regions/crop_foreground'])} cannot apply to a biplanar "
            "X-ray model: it trains on whole views and label volumes (use augmentation.view_shift and the "
            "intensity settings); flips would swap left and right anatomy under unchanged label names"
        )


def build_biplanar_transforms(
    card: ModelCard, settings: Mapping[str, Any], regions: Sequence[tuple[int, ...]] | None = None
) -> tuple[Any, Any]:
    """``(deterministic chain, random chain)`` for biplanar training cases.

    ``regions`` is for sigmoid volume cards; a biplanar pipeline has none (:func:`check_biplanar_settings`).
    """
    from monai.transforms import Compose, EnsureTyped, RandScaleIntensityd, RandShiftIntensityd

    aug = settings["augmentation"]
    keys = [*VIEW_KEYS, "label"]
    random: list[Any] = []
    shift = aug.get("view_shift") or {}
    if float(shift.get("prob", 0.0)) > 0:
        random.append(RandViewShiftd(shift["prob"], shift.get("divisors", (20.0, 20.0, 50.0))))
    if aug["scale_intensity"]["prob"] > 0:
        random.append(
            RandScaleIntensityd(
                list(VIEW_KEYS), factors=aug["scale_intensity"]["factor"], prob=aug["scale_intensity"]["prob"]
            )
        )
    if aug["shift_intensity"]["prob"] > 0:
        random.append(
            RandShiftIntensityd(
                list(VIEW_KEYS), offsets=aug["shift_intensity"]["offset"], prob=aug["shift_intensity"]["prob"]
            )
        )
    random.append(EnsureTyped(keys, track_meta=False))
    return Compose([LoadViewsd(card, settings["data"]["label_remap"])]), Compose(random)


def biplanar_loss(
    network: Any, batch: Mapping[str, Any], device: Any, autocast: Any, mutual_weight: float
) -> Any:
    """The Swin-X2S training loss of one batch (forward of both views under ``autocast``)."""
    from medswin.models.swin_x2s import swin_x2s_loss

    ap = batch["ap"].to(device, non_blocking=True).float()
    lateral = batch["lateral"].to(device, non_blocking=True).float()
    label = batch["label"].to(device, non_blocking=True)
    with autocast:
        out_ap, out_lateral = network(ap, lateral)
    return swin_x2s_loss(out_ap.float(), out_lateral.float(), label, mutual_weight=mutual_weight)


def biplanar_step_loss(settings: Mapping[str, Any], card: ModelCard) -> Any:
    """The training loss of one batch of a biplanar model (:data:`medswin.tasks.BIPLANAR`):
    ``step(network, batch, device, autocast)`` -> :func:`biplanar_loss` with the pipeline's mutual weight."""
    mutual = float(settings["loss"]["mutual_weight"])

    def step(network: Any, batch: Mapping[str, Any], device: Any, autocast: Any) -> Any:
        return biplanar_loss(network, batch, device, autocast, mutual)

    return step


def validate_biplanar_cases(
    network: Any,
    card: ModelCard,
    cases: Sequence[CaseEntry],
    structures: Mapping[str, tuple[int, ...]],
    settings: Mapping[str, Any] | None = None,
    *,
    label_remap: Mapping[int, int],
    device: Any = "cpu",
    precision: str = "fp32",
) -> list[tuple[str, dict[str, float]]]:
    """Predict each case with :class:`~medswin.inference.x2s.X2SPredictor` and score Dice per structure.

    ``settings`` (the pipeline's validation section) has nothing for a single-window model: no
    overlap, blending or window batch.

    Dice is without background (unlike the official validation) and 1 for a structure absent
    from both prediction and label.
    """
    from medswin.inference.x2s import X2SPredictor
    from medswin.metrics.overlap import structure_dice

    predictor = X2SPredictor(network, card=card, device=str(device), precision=precision)
    results = []
    for entry in cases:
        ap, lateral, label = read_biplanar_case(entry, card, label_remap)
        try:
            predicted = predictor.predict(ap, lateral).labels.array[0]
        except MedSwinError as error:
            raise ManifestError(f"case {entry.case_id}: {error}") from None
        results.append((entry.case_id, structure_dice(predicted, label.array[0], structures)))
    return results
