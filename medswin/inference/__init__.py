"""medswin.inference: the :class:`Predictor` (image in, labels on the input's grid out) and its biplanar
counterpart :class:`X2SPredictor` (an AP and a lateral radiograph in, a label volume out)."""

from __future__ import annotations

from medswin.inference.predictor import PRECISIONS, Prediction, Predictor, ProgressCallback
from medswin.inference.runtime import configure_cpu_runtime
from medswin.inference.stitching import sliding_window_reduce
from medswin.inference.x2s import X2SPrediction, X2SPredictor

__all__ = [
    "PRECISIONS",
    "Prediction",
    "Predictor",
    "ProgressCallback",
    "configure_cpu_runtime",
    "sliding_window_reduce",
    "X2SPrediction",
    "X2SPredictor",
]
