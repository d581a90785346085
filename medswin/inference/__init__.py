"""medswin.inference: the :class:`Predictor` (image in, labels on the input's grid out) and its biplanar
counterpart :class:`X2SPredictor` (an AP and a lateral radiograph in, a label volume out).

Names are resolved on first use (:mod:`medswin._lazy`), so importing a torch-free submodule such as
:mod:`medswin.inference.runtime` does not load torch through this package.
"""

from __future__ import annotations

import medswin.weights  # noqa: F401  (plugs published weights names into resolve_model, for Predictor(NAME))
from medswin._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "medswin.inference.runtime": ("PRECISIONS", "configure_cpu_runtime"),
        "medswin.inference.predictor": ("Prediction", "Predictor", "ProgressCallback"),
        "medswin.inference.stitching": ("sliding_window_reduce",),
        "medswin.inference.x2s": ("X2SPrediction", "X2SPredictor"),
    },
)
