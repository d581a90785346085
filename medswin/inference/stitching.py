"""Sliding-window inference whose memory does not grow with the number of classes times the volume.

MONAI's :func:`monai.inferers.sliding_window_inference` keeps a full-resolution output buffer of
``classes x volume`` values in the input's dtype plus a count map (14 classes x 267x267x750 voxels =
3.0 GB float32 for a 600-slice abdominal CT; MONAI issue #6427). Here the same windows (MONAI's
``dense_patch_slices`` with its scan interval, padding and ``compute_importance_map`` weights) are
visited in order along one *slab axis*; a plane along that axis is final once every window
covering it has been added, and is then reduced at once (e.g. argmax -> uint8 labels). Only a
slab as deep as one window is held in float32:

    peak stitching memory ~= 4 B x K x roi[slab] x (product of the other spatial sizes)
                             + the reduced output (1 B per voxel for uint8 labels)

versus ``4 B x (K + 1) x volume`` for MONAI's buffer. Blended values agree with
``sliding_window_inference`` to float rounding (tested), so results do not depend on the memory bound.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["StitchResult", "scan_interval", "sliding_window_reduce"]


def scan_interval(
    image_size: Sequence[int], roi_size: Sequence[int], overlap: Sequence[float]
) -> tuple[int, ...]:
    """Step between window starts per axis, exactly as MONAI's sliding window computes it."""
    steps = []
    for size, roi, frac in zip(image_size, roi_size, overlap):
        steps.append(int(roi) if roi == size else max(int(roi * (1 - frac)), 1))
    return tuple(steps)


@dataclass
class StitchResult:
    """Output of :func:`sliding_window_reduce`.

    Attributes:
        reduced: the reduced map, shape ``(*S)`` (the input's spatial shape), as ``reduce`` made it.
        blended: the blended network outputs ``(K, *S)`` float32 when ``keep_blended`` was set, else ``None``.
        windows: number of windows run (each may run several forward passes with test-time augmentation).
        slab_axis: the spatial axis planes were completed along.
        buffer_shape: shape of the float32 running sum, ``(K, roi[slab_axis], *other sizes)``.
    """

    reduced: torch.Tensor
    blended: torch.Tensor | None
    windows: int
    slab_axis: int
    buffer_shape: tuple[int, ...]


def sliding_window_reduce(
    inputs: torch.Tensor,
    predictor: Callable[[torch.Tensor], torch.Tensor],
    roi_size: Sequence[int],
    reduce: Callable[[torch.Tensor], torch.Tensor],
    *,
    overlap: float | Sequence[float] = 0.5,
    sw_batch_size: int = 1,
    mode: str = "gaussian",
    sigma_scale: float | Sequence[float] = 0.125,
    cval: float = 0.0,
    keep_blended: bool = False,
    on_windows: Callable[[int, int], None] | None = None,
) -> StitchResult:
    """Run ``predictor`` over sliding windows of ``inputs``, blend, and reduce plane by plane.

    Args:
        inputs: one image ``(C, *S)`` (no batch axis), on the device the predictor runs on.
        predictor: ``(B, C, *roi) -> (B, K, *roi)`` float32 (network logits); B <= ``sw_batch_size``.
        roi_size: window size per spatial axis (``-1``/``None``: the whole axis).
        reduce: blended outputs of a slab ``(K, n, *rest)`` -> ``(*lead, n, *rest)``, e.g. argmax
            (no ``lead``) or probabilities (``lead = (K,)``). The slab axis comes first; ``rest``
            are the other spatial axes in their order.
        overlap: fraction of a window shared with its neighbour, per axis or one for all, in [0, 1).
        sw_batch_size: windows per predictor call.
        mode / sigma_scale: MONAI blending (``"gaussian"`` or ``"constant"``).
        cval: padding value where the image is smaller than a window.
        keep_blended: also return the full blended output ``(K, *S)`` (memory ``4 B x K x volume``).
        on_windows: called as ``on_windows(done, total)`` before the first and after each predictor
            call; it may raise to stop.
    """
    from monai.data.utils import compute_importance_map, dense_patch_slices
    from monai.utils import ensure_tuple_rep, fall_back_tuple

    spatial = tuple(int(s) for s in inputs.shape[1:])
    dims = len(spatial)
    roi = tuple(int(r) for r in fall_back_tuple(roi_size, spatial))
    overlaps = ensure_tuple_rep(overlap, dims)
    if any(not 0 <= o < 1 for o in overlaps):
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")

    # Pad like MONAI where the image is smaller than a window (symmetric, constant value).
    pad_before = [max(r - s, 0) // 2 for r, s in zip(roi, spatial)]
    pad_after = [max(r - s, 0) - b for r, s, b in zip(roi, spatial, pad_before)]
    if any(pad_before) or any(pad_after):
        pads = [p for axis in reversed(range(dims)) for p in (pad_before[axis], pad_after[axis])]
        inputs = F.pad(inputs[None], pads, mode="constant", value=cval)[0]
    size = tuple(int(s) for s in inputs.shape[1:])

    windows = dense_patch_slices(size, roi, scan_interval(size, roi, overlaps))
    starts = [{w[axis].start for w in windows} for axis in range(dims)]
    # Slab along the axis with the most window positions (ties: the last axis, the slowest-varying in memory).
    slab = max(range(dims), key=lambda axis: (len(starts[axis]), axis))
    windows = sorted(windows, key=lambda w: w[slab].start)
    rest = [axis for axis in range(dims) if axis != slab]
    depth = roi[slab]

    weight = compute_importance_map(roi, mode=mode, sigma_scale=sigma_scale, device=inputs.device)
    weight = weight.to(torch.float32).movedim(slab, 0)[None]  # (1, roi[slab], *roi[rest])

    acc: torch.Tensor | None = None  # (K, depth, *size[rest]) running weighted sum
    norm = torch.zeros((1, depth, *(size[a] for a in rest)), dtype=torch.float32, device=inputs.device)
    reduced: torch.Tensor | None = None  # (*lead, size[slab], *size[rest])
    blended: torch.Tensor | None = None
    origin = 0  # slab-axis index of acc[:, 0]

    def flush(upto: int) -> None:
        """Reduce planes [origin, upto) (all their windows are in) and shift the slab buffer."""
        nonlocal origin, reduced, blended
        count = upto - origin
        if count <= 0 or acc is None:
            return
        block = acc[:, :count] / norm[:, :count]
        out = reduce(block)
        lead = tuple(out.shape[: out.dim() - dims])
        if reduced is None:
            reduced = torch.empty(
                (*lead, size[slab], *(size[a] for a in rest)), dtype=out.dtype, device=out.device
            )
        reduced[(Ellipsis, slice(origin, upto), *([slice(None)] * (dims - 1)))] = out
        if keep_blended:
            if blended is None:
                grid = (size[slab], *(size[a] for a in rest))
                blended = torch.empty((acc.shape[0], *grid), dtype=torch.float32, device=acc.device)
            blended[:, origin:upto] = block
        del block, out
        carried = depth - count
        for plane in range(carried):  # plane by plane: source and target never overlap
            acc[:, plane].copy_(acc[:, plane + count])
            norm[:, plane].copy_(norm[:, plane + count])
        acc[:, carried:].zero_()
        norm[:, carried:].zero_()
        origin = upto

    total = len(windows)
    if on_windows is not None:
        on_windows(0, total)
    for first in range(0, total, sw_batch_size):
        group = windows[first : first + sw_batch_size]
        batch = torch.stack([inputs[(slice(None), *w)] for w in group])
        outputs = predictor(batch)
        if outputs.shape[0] != len(group) or tuple(outputs.shape[2:]) != roi:
            raise ValueError(
                f"predictor returned shape {tuple(outputs.shape)} for windows {tuple(batch.shape)}; "
                "it must keep the batch size and the window size"
            )
        for w, out in zip(group, outputs):
            flush(w[slab].start)
            if acc is None:
                acc = torch.zeros((out.shape[0], *norm.shape[1:]), dtype=torch.float32, device=inputs.device)
            local = (
                slice(None),
                slice(w[slab].start - origin, w[slab].stop - origin),
                *(w[a] for a in rest),
            )
            moved = out.movedim(1 + slab, 1).to(torch.float32)
            moved.mul_(weight)
            acc[local] += moved
            norm[local] += weight
        del outputs, batch
        if on_windows is not None:
            on_windows(min(first + sw_batch_size, total), total)
    flush(size[slab])
    assert reduced is not None and acc is not None
    buffer_shape = tuple(acc.shape)

    # Back to the array's axis order, then crop the padding.
    order = list(range(1, dims))
    order.insert(slab, 0)
    lead = reduced.dim() - dims
    reduced = reduced.permute([*range(lead), *(o + lead for o in order)])
    crop = tuple(slice(b, b + s) for b, s in zip(pad_before, spatial))
    reduced = reduced[(Ellipsis, *crop)].contiguous()
    if blended is not None:
        blended = blended.permute([0, *(o + 1 for o in order)])[
            (slice(None), *crop)
        ]  # a view: no second copy
    return StitchResult(reduced, blended, total, slab, buffer_shape)
