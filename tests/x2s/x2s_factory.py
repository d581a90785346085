"""Made-up biplanar data for the Swin-X2S tests: a tiny card and network, phantom DRR pairs,
and the same pairs written as DICOM DX radiographs, MHA and PNG files."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1] / "io"))

from dicom_factory import write_radiograph  # noqa: E402

from medswin.data.phantom import make_ct_phantom  # noqa: E402
from medswin.models.card import ModelCard, preset_card  # noqa: E402
from medswin.transforms.drr import BiplanarDRR, biplanar_drr  # noqa: E402
from medswin.transforms.radiograph import drr_geometry  # noqa: E402

__all__ = ["tiny_card", "tiny_network", "phantom_pair", "write_dx", "write_png"]


def tiny_card(size: int = 64, **changes: Any) -> ModelCard:
    """The demo-x2s card shrunk to a ``size``³ output from a ``size``-voxel cube (same code path, seconds to train)."""
    card = preset_card("demo-x2s")
    config = {**card.config, "img_size": [size, size, size]}
    fields = {
        "id": "tiny-x2s",
        "config": config,
        "roi_size": (size, size, size),
        "radiographs": {**card.radiographs, "cube_size": size, "oversample": 1},  # type: ignore[dict-item]
    }
    return card.replace(**{**fields, **changes})


def tiny_network(card: ModelCard, seed: int = 0) -> Any:
    import torch

    torch.manual_seed(seed)
    return card.create_model().eval()


def phantom_pair(card: ModelCard, seed: int = 1000, orientation: str = "LPS") -> BiplanarDRR:
    """AP + lateral DRRs of a default phantom and its labels on the card's output grid."""
    case = make_ct_phantom(orientation=orientation, seed=seed)
    return biplanar_drr(case.image, case.labels, drr_geometry(card))


def write_dx(
    path: Path,
    view: np.ndarray,
    pixel_mm: float,
    *,
    orientation: tuple[str, str],
    distances_mm: tuple[float, float] | None = None,
    photometric: str = "MONOCHROME2",
) -> Path:
    """A DX radiograph of ``view`` (array ``(x, y)`` in [0, 1]) stored as 12-bit pixels."""
    pixels = np.round(np.clip(view, 0, 1) * 4095).astype(np.uint16)
    if photometric == "MONOCHROME1":
        pixels = (4095 - pixels).astype(np.uint16)
    written, _ = write_radiograph(
        path,
        pixel_spacing=(pixel_mm, pixel_mm),
        pixels=pixels,
        orientation=orientation,
        view_position="PA" if {"L", "R"} & set(orientation) else "LL",  # a frontal film shows left-right
        distances_mm=distances_mm,
        photometric=photometric,
    )
    return written


def write_png(path: Path, view: np.ndarray) -> Path:
    """An 8-bit grey PNG of ``view`` (array ``(x, y)``, shown with x to the right and y down)."""
    from PIL import Image as PILImage

    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(np.round(np.clip(view, 0, 1) * 255).astype(np.uint8).T).save(path)
    return path
