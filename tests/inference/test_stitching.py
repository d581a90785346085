"""Plane-by-plane stitching equals MONAI's sliding_window_inference while holding one slab."""

from __future__ import annotations

import pytest
import torch
from monai.inferers import sliding_window_inference

from medswin.inference.stitching import scan_interval, sliding_window_reduce


def _conv(dims: int, channels: int = 2, classes: int = 5) -> torch.nn.Module:
    torch.manual_seed(dims)
    conv = (torch.nn.Conv3d if dims == 3 else torch.nn.Conv2d)(channels, classes, 3, padding=1)
    return conv.eval()


@pytest.mark.parametrize(
    ("shape", "roi", "overlap", "mode"),
    [
        ((20, 37, 29), (16, 16, 16), 0.5, "gaussian"),
        ((20, 37, 29), (16, 16, 16), 0.75, "gaussian"),  # several windows overlap each plane
        ((10, 37, 29), (16, 16, 8), 0.25, "constant"),  # image smaller than the window: padded
        ((40, 30, 12), (16, 16, 1), 0.5, "gaussian"),  # slice-by-slice windows
        ((50, 33), (16, 32), 0.6, "gaussian"),  # 2D
    ],
)
def test_equals_monai_sliding_window(shape, roi, overlap, mode) -> None:
    net = _conv(len(shape))
    image = torch.randn(2, *shape)
    with torch.no_grad():
        reference = sliding_window_inference(image[None], roi, 1, net, overlap=overlap, mode=mode)[0]
        result = sliding_window_reduce(
            image,
            net,
            roi,
            lambda b: b.argmax(0),
            overlap=overlap,
            mode=mode,
            sw_batch_size=3,
            keep_blended=True,
        )
    torch.testing.assert_close(result.blended, reference, atol=1e-5, rtol=1e-5)
    assert torch.equal(result.reduced, reference.argmax(0))
    assert result.reduced.shape == shape


def test_holds_one_slab_not_the_volume() -> None:
    net = _conv(3, channels=1, classes=7)
    image = torch.randn(1, 40, 36, 100)
    with torch.no_grad():
        result = sliding_window_reduce(image, net, (16, 16, 16), lambda b: b.argmax(0).to(torch.uint8))
    assert result.blended is None and result.reduced.dtype == torch.uint8
    assert result.slab_axis == 2  # most window positions along the last axis
    assert result.buffer_shape == (7, 16, 40, 36)  # 16 of 100 planes


def test_reduce_sees_slab_first_and_progress_counts_windows() -> None:
    net = _conv(3, channels=1, classes=3)
    image = torch.randn(1, 50, 20, 20)
    seen: list[tuple[int, ...]] = []
    progress: list[tuple[int, int]] = []

    def reduce(block: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(block.shape))
        return block.argmax(0)

    with torch.no_grad():
        result = sliding_window_reduce(
            image, net, (16, 16, 16), reduce, overlap=0.5, on_windows=lambda d, t: progress.append((d, t))
        )
    assert result.slab_axis == 0 and all(s[0] == 3 and s[2:] == (20, 20) for s in seen)
    assert sum(s[1] for s in seen) == 50
    total = result.windows
    assert progress == [(d, total) for d in range(total + 1)]


def test_scan_interval_matches_monai() -> None:
    from monai.inferers.utils import _get_scan_interval

    for size, roi, overlap in [
        ((100, 96, 50), (96, 96, 32), (0.5, 0.5, 0.5)),
        ((40, 41), (16, 16), (0.99, 0.0)),
    ]:
        assert scan_interval(size, roi, overlap) == _get_scan_interval(size, roi, len(size), overlap)


def test_predictor_must_keep_shapes() -> None:
    with pytest.raises(ValueError, match="must keep the batch size and the window size"):
        sliding_window_reduce(torch.zeros(1, 20, 20), lambda b: b[:, :, :8], (16, 16), lambda b: b.argmax(0))
