"""From network outputs to a label map, and optional clean-up of that label map.

* softmax cards: the label of the channel with the largest (blended) logit;
* sigmoid cards: each region channel thresholded at probability 0.5 (logit >= 0) and painted as
  ``region.label`` in the card's order, a later region overwriting an earlier one (BraTS: WT, then
  TC, then ET);
* :class:`Postprocess`: keep a subset of labels, keep the largest connected component and/or drop
  small components per label, and rename labels, on the final label map.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medswin.errors import ModelCardError
from medswin.io.image import Image
from medswin.models.card import ModelCard

__all__ = [
    "probabilities_to_input_labels",
    "Postprocess",
    "channel_labels",
    "label_numpy_dtype",
    "logits_to_labels",
    "logits_to_probabilities",
    "keep_largest_component",
    "remove_small_components",
]


def channel_labels(card: ModelCard) -> list[int]:
    """Label value of each output channel of a softmax card (channel ``i`` -> ``i``-th smallest label)."""
    values = sorted(card.labels)
    if card.activation == "softmax" and len(values) != card.num_classes:
        raise ModelCardError(f"card {card.id}: {card.num_classes} output channels for {len(values)} labels")
    return values


def label_numpy_dtype(card: ModelCard) -> np.dtype:
    """uint8 when every label fits, else uint16."""
    return np.dtype(np.uint8 if max(card.labels) <= 255 else np.uint16)


def logits_to_labels(logits: Any, card: ModelCard) -> Any:
    """Blended logits ``(K, *S)`` (torch tensor) -> label values ``(*S)`` as an int tensor.

    uint8 when all labels fit, int32 otherwise (torch has no general uint16). A sigmoid region is
    inside where its probability reaches the card's ``threshold``.
    """
    import math

    import torch

    dtype = torch.uint8 if max(card.labels) <= 255 else torch.int32
    if card.activation == "sigmoid":
        labels = torch.zeros(logits.shape[1:], dtype=dtype, device=logits.device)
        for region in card.regions:
            if region.channel >= logits.shape[0]:
                raise ModelCardError(
                    f"card {card.id}: region {region.name!r} reads channel {region.channel}, "
                    f"but the network gives {logits.shape[0]}"
                )
            cut = math.log(card.threshold / (1.0 - card.threshold))  # sigmoid(x) >= t  <=>  x >= logit(t)
            labels[logits[region.channel] >= cut] = region.label
        return labels
    values = channel_labels(card)
    index = torch.argmax(logits, dim=0)
    if values == list(range(len(values))):
        return index.to(dtype)
    table = torch.as_tensor(values, dtype=dtype, device=logits.device)
    return table[index]


def logits_to_probabilities(logits: Any, card: ModelCard, *, inplace: bool = False) -> Any:
    """Blended logits ``(K, *S)`` -> probabilities: softmax over channels, or sigmoid per region channel.

    ``inplace=True`` overwrites ``logits`` (no second ``K x volume`` buffer).
    """

    if not inplace:
        logits = logits.clone()
    if card.activation == "sigmoid":
        return logits.sigmoid_()
    logits.sub_(logits.amax(dim=0, keepdim=True)).exp_()
    return logits.div_(logits.sum(dim=0, keepdim=True))


def probabilities_to_input_labels(
    probabilities: np.ndarray, model_affine: np.ndarray, reference: Image, card: ModelCard
) -> Image:
    """Labels on ``reference``'s grid from probabilities ``(K, *S)`` on the model grid, the way MONAI's
    ``Invertd(nearest_interp=False)`` + ``AsDiscreted(argmax)`` make them: each channel resampled
    linearly onto the input grid, then argmax (softmax) or the threshold per region (sigmoid).

    One channel is resampled at a time and folded into a running maximum, so memory stays at the
    model-grid probabilities plus three input-grid arrays, whatever the number of classes.
    """
    from medswin.transforms.preprocessing import to_input_grid

    dtype = label_numpy_dtype(card)
    labels: np.ndarray | None = None
    if card.activation == "sigmoid":
        for region in card.regions:
            channel = to_input_grid(probabilities[region.channel], model_affine, reference, kind="intensity")
            inside = channel.array[0] >= card.threshold
            if labels is None:
                labels = np.zeros(inside.shape, dtype=dtype)
            labels[inside] = region.label
        if labels is None:
            raise ModelCardError(f"card {card.id}: a sigmoid card needs regions")
        return reference.with_array(labels[None], kind="label")
    values = channel_labels(card)
    best: np.ndarray | None = None
    for channel, value in enumerate(values):
        resampled = to_input_grid(probabilities[channel], model_affine, reference, kind="intensity").array[0]
        if best is None:  # outside the model grid every channel is 0: background (the first) wins
            best, labels = resampled, np.full(resampled.shape, value, dtype=dtype)
            continue
        higher = resampled > best
        np.copyto(best, resampled, where=higher)
        labels[higher] = value
        del resampled, higher
    return reference.with_array(labels[None], kind="label")


def _components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Connected components of ``mask`` (full connectivity: 26 in 3D, 8 in 2D) and their voxel counts."""
    from scipy import ndimage

    structure = ndimage.generate_binary_structure(mask.ndim, mask.ndim)
    components, _ = ndimage.label(mask, structure=structure)
    return components, np.bincount(components.ravel())


def _label_components(
    labels: np.ndarray, values: Sequence[int] | None
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per label present (of ``values``, default all): a writable view of its bounding box in
    ``labels``, the components of that label inside it, and their voxel counts (0 = the rest)."""
    from scipy import ndimage

    for value, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None or (values is not None and value not in values):
            continue
        crop = labels[box]
        yield (crop, *_components(crop == value))


def keep_largest_component(labels: np.ndarray, values: Sequence[int] | None = None) -> np.ndarray:
    """Set to 0 every voxel of label ``v`` outside its largest connected component (in place).

    Args:
        labels: integer label map ``(X, Y[, Z])``.
        values: labels to clean; default: every non-zero label present.
    """
    for crop, components, sizes in _label_components(labels, values):
        if len(sizes) <= 2:  # background + one component
            continue
        sizes[0] = 0
        crop[(components != int(np.argmax(sizes))) & (components > 0)] = 0
    return labels


def remove_small_components(
    labels: np.ndarray, min_voxels: int, values: Sequence[int] | None = None
) -> np.ndarray:
    """Set to 0 the connected components of each label smaller than ``min_voxels`` (in place)."""
    if min_voxels <= 1:
        return labels
    for crop, components, sizes in _label_components(labels, values):
        small = np.flatnonzero(sizes < min_voxels)
        small = small[small > 0]
        if small.size:
            crop[np.isin(components, small)] = 0
    return labels


@dataclass(frozen=True)
class Postprocess:
    """Clean-up of a predicted label map, applied in this order: subset, components, remap.

    Attributes:
        keep_labels: labels to keep; every other label becomes 0 (``None`` keeps all).
        keep_largest: ``True`` keeps only the largest connected component of every label; a
            sequence limits that to these labels (e.g. the liver, not the kidneys).
        min_size_mm3: connected components smaller than this volume (mm³; mm² for 2D images)
            are set to 0.
        remap: label value -> new value for the written map (e.g. BraTS 3 -> 4); others unchanged.
    """

    keep_labels: tuple[int, ...] | None = None
    keep_largest: bool | tuple[int, ...] = False
    min_size_mm3: float = 0.0
    remap: Mapping[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.min_size_mm3 < 0:
            raise ValueError(f"min_size_mm3 must be >= 0, got {self.min_size_mm3}")
        if self.keep_labels is not None:
            object.__setattr__(self, "keep_labels", tuple(int(v) for v in self.keep_labels))
        if not isinstance(self.keep_largest, bool):
            object.__setattr__(self, "keep_largest", tuple(int(v) for v in self.keep_largest))
        if any(int(k) < 0 or int(v) < 0 for k, v in self.remap.items()):
            raise ValueError(f"remap values must be non-negative, got {dict(self.remap)}")

    @property
    def is_identity(self) -> bool:
        return (
            self.keep_labels is None and not self.keep_largest and self.min_size_mm3 <= 0 and not self.remap
        )

    def apply(self, labels: Image) -> Image:
        """A cleaned copy of ``labels`` (one channel) on the same grid; uint8 or uint16."""
        if self.is_identity:
            return labels
        array = np.array(labels.array[0], copy=True)
        if self.keep_labels is not None:
            array[~np.isin(array, self.keep_labels)] = 0
        if self.keep_largest:
            keep_largest_component(array, None if self.keep_largest is True else self.keep_largest)
        if self.min_size_mm3 > 0:
            voxel_mm3 = float(np.prod(labels.spacing))
            remove_small_components(array, int(np.ceil(self.min_size_mm3 / voxel_mm3)))
        if self.remap:
            table = np.arange(max(int(array.max()), *self.remap) + 1, dtype=np.int64)
            for old, new in self.remap.items():
                table[int(old)] = int(new)
            array = table[array]
            array = array.astype(np.uint8 if array.max(initial=0) <= 255 else np.uint16)
        return labels.with_array(array[None], kind="label")
