"""medswin.inference: the one :class:`Predictor` (image in, labels on the input's grid out)."""

from __future__ import annotations

from medswin.inference.predictor import PRECISIONS, Prediction, Predictor, ProgressCallback
from medswin.inference.runtime import configure_cpu_runtime
from medswin.inference.stitching import sliding_window_reduce

__all__ = [
    "PRECISIONS",
    "Prediction",
    "Predictor",
    "ProgressCallback",
    "configure_cpu_runtime",
    "sliding_window_reduce",
]
