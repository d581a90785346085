"""A tiny SwinUNETR checkpoint (one 64x32x32 window per case) and small cases in the layouts users have."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "io"))

from medswin.data.phantom import make_ct_phantom  # noqa: E402
from medswin.io import Image, write_image  # noqa: E402
from medswin.models import preset_card, save_checkpoint  # noqa: E402

#: small anisotropic cases: 28 x 24 x 12 voxels of 2.4 x 2.2 x 5 mm (the model grid fits one window).
SHAPE = (28, 24, 12)
SPACING = (2.4, 2.2, 5.0)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo card's labels and colours on a random feature-size-12 SwinUNETR with 64x32x32 windows."""
    card = preset_card("demo").replace(id="tiny_batch", roi_size=(64, 32, 32), spacing=(3.0, 3.0, 5.0))
    torch.manual_seed(0)
    return save_checkpoint(card.create_model(), card, tmp_path_factory.mktemp("model") / "tiny.safetensors")


def ct_case(seed: int, orientation: str = "LPS") -> Image:
    return make_ct_phantom(shape=SHAPE, spacing=SPACING, orientation=orientation, seed=seed).image


def write_nifti_cases(folder: Path, names: list[str]) -> list[Path]:
    """One int16 NIfTI CT per name, orientations cycled (LPS, RAS, oblique)."""
    orientations = ("LPS", "RAS", "oblique")
    return [
        write_image(ct_case(index, orientations[index % 3]), folder / f"{name}.nii.gz", dtype=np.int16)
        for index, name in enumerate(names)
    ]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative name -> bytes), to prove inputs stay byte-identical."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
