"""Small MRI and CT cases for the challenge layouts (imported by the tests beside it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medswin.data.phantom import make_ct_phantom
from medswin.io import Image

REPOSITORY = Path(__file__).resolve().parents[2]
#: a brain-sized stand-in for the 240x240x155 SRI-24 grid: 1 mm voxels, LPS-flipped like BraTS.
MRI_SHAPE = (40, 44, 31)


def mri_channels(seed: int, channels: int = 4) -> list[Image]:
    """``channels`` co-registered made-up MRI volumes (1 mm, LPS-flipped grid) with a bright lesion."""
    rng = np.random.default_rng(seed)
    base = make_ct_phantom(shape=MRI_SHAPE, spacing=(1.0, 1.0, 1.0), orientation="LPS", seed=seed).image
    images = []
    for channel in range(channels):
        array = np.clip(base.array + 1000, 0, None) * (0.5 + 0.2 * channel) + rng.normal(
            0, 5, base.array.shape
        )
        images.append(base.with_array(array.astype(np.float32)))
    return images


def ct_case(seed: int) -> Image:
    return make_ct_phantom(
        shape=(28, 24, 12), spacing=(2.4, 2.2, 5.0), orientation="oblique", seed=seed
    ).image
