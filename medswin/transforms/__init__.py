"""medswin.transforms: a model card's preprocessing (MONAI transforms), the way back onto the input
grid, and label post-processing."""

from __future__ import annotations

from medswin._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "medswin.transforms.postprocess": (
            "Postprocess",
            "keep_largest_component",
            "logits_to_labels",
            "logits_to_probabilities",
            "remove_small_components",
        ),
        "medswin.transforms.preprocessing": ("build_preprocess", "preprocess", "to_input_grid"),
    },
)
