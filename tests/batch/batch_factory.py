"""Small CT cases in the layouts batch users have (imported by the tests beside it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medswin.data.phantom import make_ct_phantom
from medswin.io import Image, write_image

#: small anisotropic cases: 28 x 24 x 12 voxels of 2.4 x 2.2 x 5 mm (the model grid fits one window).
SHAPE = (28, 24, 12)
SPACING = (2.4, 2.2, 5.0)


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
