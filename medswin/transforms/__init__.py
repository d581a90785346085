"""medswin.transforms: a model card's preprocessing (MONAI transforms), the way back onto the input
grid, and label post-processing."""

from __future__ import annotations

from medswin.transforms.postprocess import (
    Postprocess,
    keep_largest_component,
    logits_to_labels,
    logits_to_probabilities,
    remove_small_components,
)
from medswin.transforms.preprocess import build_preprocess, preprocess, to_input_grid

__all__ = [
    "Postprocess",
    "build_preprocess",
    "preprocess",
    "to_input_grid",
    "logits_to_labels",
    "logits_to_probabilities",
    "keep_largest_component",
    "remove_small_components",
]
