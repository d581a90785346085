"""Patch merging of MONAI < 1.5, needed to reproduce every published SwinUNETR checkpoint.

MONAI 1.5 (PR #8285, fixing issue #8284) corrected the order of the eight stride-2 sub-grids that
3D ``PatchMerging`` concatenates before its ``reduction`` Linear. No shape changed, so checkpoints
trained before 1.5 (research-contributions BTCV/BraTS21, the model-zoo bundle, ``model_swinvit.pt``)
load without any error into the new layer and silently compute a different function. This module
restores the old order; MONAI maintainers had kept it on purpose for that reason (PR #5106).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.networks.nets.swin_unetr import PatchMergingV2

__all__ = ["LEGACY_MERGING_OFFSETS", "LegacyPatchMerging"]

#: (d, h, w) start offsets of the eight stride-2 sub-grids in the channel order MONAI < 1.5 used.
#: (0,1,0) and (0,0,1) appear twice; (1,1,0) and (0,1,1) never appear (MONAI issues #4757, #8284).
LEGACY_MERGING_OFFSETS: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0),
    (1, 0, 0),
    (0, 1, 0),
    (0, 0, 1),
    (1, 0, 1),
    (0, 1, 0),
    (0, 0, 1),
    (1, 1, 1),
)


class LegacyPatchMerging(PatchMergingV2):
    """MONAI < 1.5 patch merging; pass the class as ``SwinUNETR(downsample=LegacyPatchMerging)``.

    Same parameters and state_dict keys as MONAI's ``PatchMerging`` (``norm`` over 8C, bias-free
    ``reduction`` 8C -> 2C). 2D inputs use MONAI's 2D order, which that fix did not touch.

    Args:
        dim: channels C of the incoming tokens.
        norm_layer: normalisation over the 8C (3D) or 4C (2D) concatenated channels.
        spatial_dims: 2 or 3.

    Input ``(B, D, H, W, C)`` channel-last tokens -> ``(B, ceil(D/2), ceil(H/2), ceil(W/2), 2C)``
    (odd sizes are zero-padded at the far end first, as MONAI does).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            return super().forward(x)
        if x.dim() != 5:
            raise ValueError(f"LegacyPatchMerging expects (B, D, H, W, C) tokens, got shape {tuple(x.shape)}")
        _, d, h, w, _ = x.shape
        if d % 2 or h % 2 or w % 2:
            x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2, 0, d % 2))
        parts = [x[:, i::2, j::2, k::2, :] for i, j, k in LEGACY_MERGING_OFFSETS]
        return self.reduction(self.norm(torch.cat(parts, dim=-1)))
