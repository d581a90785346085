"""Input checks shared by the architectures: clear errors before a cryptic conv/reshape failure."""

from __future__ import annotations

from collections.abc import Sequence

from medswin.errors import MedSwinError

__all__ = ["ModelInputError", "check_input_shape"]


class ModelInputError(MedSwinError, ValueError):
    """A tensor given to a network has the wrong channel count or spatial size."""


def check_input_shape(
    shape: Sequence[int],
    *,
    model: str,
    in_channels: int,
    spatial_dims: int,
    multiple: int = 1,
    exact: Sequence[int] | None = None,
    min_bottleneck_voxels: int = 1,
) -> None:
    """Raise :class:`ModelInputError` unless ``shape`` is ``(B, in_channels, *spatial)``.

    Args:
        shape: the input tensor's shape, ``(B, C, H, W[, D])``.
        model: architecture name, for the message.
        in_channels: channels the network was built for.
        spatial_dims: 2 or 3.
        multiple: every spatial size must be divisible by this (e.g. 32 for SwinUNETR patch 2).
        exact: if given, the only accepted spatial size (networks built for one resolution).
        min_bottleneck_voxels: the grid at 1/``multiple`` must have at least this many voxels
            (instance norm on a 1-voxel bottleneck fails).
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) != spatial_dims + 2:
        raise ModelInputError(
            f"{model}: expected a {spatial_dims + 2}-D tensor (B, C, {'H, W, D' if spatial_dims == 3 else 'H, W'}), "
            f"got shape {shape}"
        )
    if shape[1] != in_channels:
        raise ModelInputError(
            f"{model}: built for {in_channels} input channel(s) but the input has {shape[1]} (shape {shape}); "
            "check the image's channels against the model card's 'channels'"
        )
    spatial = shape[2:]
    if exact is not None and tuple(spatial) != tuple(exact):
        raise ModelInputError(
            f"{model}: built for spatial size {tuple(exact)} but the input is {spatial}; "
            "resize the input or use a sliding window of that size"
        )
    bad = [s for s in spatial if s % multiple]
    if bad:
        raise ModelInputError(
            f"{model}: every spatial size must be divisible by {multiple}, got {spatial}; "
            f"use an ROI / patch size that is a multiple of {multiple} (e.g. 96 or 128)"
        )
    bottleneck = 1
    for s in spatial:
        bottleneck *= s // multiple
    if bottleneck < min_bottleneck_voxels:
        raise ModelInputError(
            f"{model}: input {spatial} leaves a {bottleneck}-voxel bottleneck at 1/{multiple} resolution; "
            f"at least {min_bottleneck_voxels} are needed, so make one spatial size at least {2 * multiple}"
        )
