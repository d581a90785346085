"""Tiny training tasks: small cards and pipelines for the phantoms of ``conftest.py``.

Same code path as a real run; only the sizes shrink (feature size 12, 40x32x24-voxel phantoms,
64x32x32 windows, a handful of cases).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from medswin.models.card import preset_card

PHANTOM_SHAPE = (40, 32, 24)
PHANTOM_SPACING = (3.0, 3.0, 4.0)
ROI = [64, 32, 32]


def tiny_card(**changes: Any) -> dict[str, Any]:
    """The demo card (feature size 12, window 4) with a small window, as a JSON-ready dict."""
    card = preset_card("demo").to_dict()
    card["id"] = "tiny_phantom"
    card["inference"]["roi_size"] = ROI
    card.update(changes)
    return card


def tiny_pipeline(card_path: Path, **sections: Any) -> dict[str, Any]:
    """A 2-epoch pipeline document for ``card_path`` (override any section with keyword arguments)."""
    document: dict[str, Any] = {
        "name": "tiny_phantom",
        "description": "test pipeline",
        "sources": {"test": "tests/training/conftest.py"},
        "model": {"card": str(card_path)},
        "data": {"datalist": "{data_root}/datalist.json", "fold": 0, "crop_foreground": False},
        "augmentation": {
            "crop": {"type": "pos_neg", "roi_size": ROI, "num_samples": 1},
            "scale_intensity": {"prob": 0.5, "factor": 0.1},
        },
        "optimizer": {"type": "adamw", "lr": 2.0e-3, "weight_decay": 1.0e-5},
        "scheduler": {"type": "warmup_cosine", "warmup_epochs": 1},
        "training": {"epochs": 2, "batch_size": 1, "val_every": 1, "device": "cpu", "seed": 3},
        "validation": {"overlap": 0.0},
    }
    for key, value in sections.items():
        document[key] = {**document.get(key, {}), **value} if isinstance(value, dict) else value
    return document


def write_yaml(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path
