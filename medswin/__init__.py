"""medswin: Swin-family medical image segmentation on MONAI and PyTorch.

The public API is imported lazily so that ``import medswin`` (and the CLI's ``--help``)
does not pull in torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "Image": "medswin.io.image",
    "read_image": "medswin.io.readers",
    "write_image": "medswin.io.writers",
    "ModelCard": "medswin.models.card",
    "create_model": "medswin.models.registry",
    "list_models": "medswin.models.registry",
    "load_checkpoint": "medswin.models.checkpoints",
    "save_checkpoint": "medswin.models.checkpoints",
    "Predictor": "medswin.inference.predictor",
    "Prediction": "medswin.inference.predictor",
    "evaluate_case": "medswin.metrics.evaluate",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'medswin' has no attribute {name!r}")
