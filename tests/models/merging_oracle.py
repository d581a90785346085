"""The standard for legacy patch merging: MONAI < 1.5's 3D PatchMerging written out by hand.

Published SwinUNETR checkpoints were trained with it (MONAI issues #4757/#8284: sub-grids 2==5 and
3==6, so two of the eight offsets are missing). Shared by the module test and the pulled-weights test.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["monai13_merging"]


def monai13_merging(module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """What MONAI <= 1.4 computed for ``x`` ``(B, D, H, W, C)`` with ``module``'s norm and reduction weights."""
    if any(s % 2 for s in x.shape[1:4]):  # odd sizes are padded at the end, as MONAI does
        x = F.pad(x, (0, 0, 0, x.shape[3] % 2, 0, x.shape[2] % 2, 0, x.shape[1] % 2))
    parts = [
        x[:, 0::2, 0::2, 0::2, :],
        x[:, 1::2, 0::2, 0::2, :],
        x[:, 0::2, 1::2, 0::2, :],
        x[:, 0::2, 0::2, 1::2, :],
        x[:, 1::2, 0::2, 1::2, :],
        x[:, 0::2, 1::2, 0::2, :],
        x[:, 0::2, 0::2, 1::2, :],
        x[:, 1::2, 1::2, 1::2, :],
    ]
    return module.reduction(module.norm(torch.cat(parts, dim=-1)))
