"""medswin: Swin-family medical image segmentation on MONAI and PyTorch.

The public API is imported lazily so that ``import medswin`` (and the CLI's ``--help``)
does not pull in torch.
"""

from __future__ import annotations

from medswin._lazy import lazy_exports

__version__ = "0.1.0"

_API, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "medswin.io.image": ("Image",),
        "medswin.io.readers": ("read_image",),
        "medswin.io.writers": ("write_image", "write_labels"),
        "medswin.models.card": ("ModelCard",),
        "medswin.models.registry": ("create_model", "list_models"),
        "medswin.models.checkpoints": ("load_checkpoint", "save_checkpoint"),
        "medswin.inference.predictor": ("Predictor", "Prediction"),
        "medswin.inference.x2s": ("X2SPredictor", "X2SPrediction"),
        "medswin.metrics.evaluate": ("evaluate_case",),
    },
)
__all__ = ["__version__", *_API]
