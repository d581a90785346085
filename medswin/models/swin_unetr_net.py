"""MONAI SwinUNETR with an input check (a module-level class so built models pickle and deepcopy)."""

from __future__ import annotations

from typing import Any

import torch
from monai.networks.nets import SwinUNETR

from medswin.models.inputs import check_input_shape

__all__ = ["CheckedSwinUNETR"]


class CheckedSwinUNETR(SwinUNETR):
    """:class:`monai.networks.nets.SwinUNETR` that names the problem when the input shape is wrong.

    Args:
        min_bottleneck_voxels: voxels the 1/32 grid needs (2 with instance norm, which cannot
            normalise a single voxel).
        **kwargs: SwinUNETR's constructor arguments.

    Input ``(B, in_channels, H, W[, D])``, every spatial size divisible by ``patch_size**5``;
    output logits ``(B, out_channels, H, W[, D])``. The check is skipped while tracing/scripting.
    """

    def __init__(self, *, min_bottleneck_voxels: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._input_check = {
            "in_channels": int(kwargs["in_channels"]),
            "spatial_dims": int(kwargs.get("spatial_dims", 3)),
            "multiple": int(kwargs.get("patch_size", 2)) ** 5,
            "min_bottleneck_voxels": min_bottleneck_voxels,
        }

    def check_input(self, shape: tuple[int, ...]) -> None:
        """Raise :class:`~medswin.models.inputs.ModelInputError` unless ``shape`` (B, C, ...) can run."""
        check_input_shape(shape, model="swin_unetr", **self._input_check)

    def forward(self, x_in: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_tracing() and not torch.jit.is_scripting():
            self.check_input(tuple(x_in.shape))
        return super().forward(x_in)
