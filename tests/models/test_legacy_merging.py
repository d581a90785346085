"""The pre-MONAI-1.5 patch merging that published SwinUNETR checkpoints need, checked numerically."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from merging_oracle import monai13_merging
from monai.networks.nets.swin_unetr import PatchMerging

from medswin.models import create_model
from medswin.models.legacy_merging import LEGACY_MERGING_OFFSETS, LegacyPatchMerging


def _pair(dim: int = 6) -> tuple[LegacyPatchMerging, PatchMerging]:
    torch.manual_seed(0)
    legacy = LegacyPatchMerging(dim, spatial_dims=3)
    with torch.no_grad():  # non-trivial LayerNorm affine so every term matters
        legacy.norm.weight.uniform_(0.5, 1.5)
        legacy.norm.bias.uniform_(-0.5, 0.5)
    current = PatchMerging(dim, spatial_dims=3)
    current.load_state_dict(legacy.state_dict())
    return legacy, current


def test_offsets_have_the_published_duplicates() -> None:
    assert len(LEGACY_MERGING_OFFSETS) == 8
    assert set(LEGACY_MERGING_OFFSETS) == {(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 0, 1), (1, 1, 1)}


def test_legacy_matches_explicit_old_order_and_differs_from_monai() -> None:
    legacy, current = _pair()
    x = torch.randn(2, 4, 6, 8, 6, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        old, new = legacy(x), current(x)
        expected = monai13_merging(legacy, x)
    assert old.shape == new.shape == (2, 2, 3, 4, 12)
    torch.testing.assert_close(old, expected, rtol=0, atol=1e-6)
    assert (old - new).abs().max() > 1e-2  # MONAI 1.5+ computes a different function on the same weights


def test_monai_current_order_is_the_full_product() -> None:
    # guards the test above: MONAI's module must really be the corrected 8-offset order
    _, current = _pair()
    x = torch.randn(1, 4, 4, 4, 6, generator=torch.Generator().manual_seed(2))
    order = [(i, j, k) for i in (0, 1) for j in (0, 1) for k in (0, 1)]
    order = [
        order[n] for n in (0, 4, 2, 1, 6, 5, 3, 7)
    ]  # x0..x7 of MONAI 1.5: (0,0,0),(1,0,0),(0,1,0),(0,0,1),(1,1,0),(1,0,1),(0,1,1),(1,1,1)
    merged = torch.cat([x[:, i::2, j::2, k::2, :] for i, j, k in order], dim=-1)
    expected = F.linear(
        F.layer_norm(merged, (48,), current.norm.weight, current.norm.bias), current.reduction.weight
    )
    with torch.no_grad():
        torch.testing.assert_close(current(x), expected, rtol=0, atol=1e-6)


def test_odd_sizes_are_padded_like_monai() -> None:
    legacy, _ = _pair()
    x = torch.randn(1, 5, 3, 7, 6, generator=torch.Generator().manual_seed(3))
    padded = F.pad(x, (0, 0, 0, 1, 0, 1, 0, 1))
    with torch.no_grad():
        torch.testing.assert_close(legacy(x), monai13_merging(legacy, padded), rtol=0, atol=1e-6)


def test_2d_tokens_use_monai_2d_order() -> None:
    torch.manual_seed(0)
    legacy = LegacyPatchMerging(4, spatial_dims=2)
    current = PatchMerging(4, spatial_dims=2)
    current.load_state_dict(legacy.state_dict())
    x = torch.randn(1, 6, 6, 4)
    with torch.no_grad():
        torch.testing.assert_close(legacy(x), current(x))


def test_rejects_wrong_rank() -> None:
    legacy, _ = _pair()
    with pytest.raises(ValueError, match="expects"):
        legacy(torch.zeros(1, 2, 2, 2, 2, 6))


def test_swin_unetr_legacy_flag_changes_the_network_output() -> None:
    torch.manual_seed(0)
    legacy = create_model("swin_unetr", feature_size=12, legacy_merging=True).eval()
    current = create_model("swin_unetr", feature_size=12, legacy_merging=False).eval()
    assert legacy.state_dict().keys() == current.state_dict().keys()  # same checkpoint layout
    current.load_state_dict(legacy.state_dict())
    downsamples = [getattr(legacy.swinViT, f"layers{i}")[0].downsample for i in range(1, 5)]
    assert all(isinstance(d, LegacyPatchMerging) for d in downsamples)
    x = torch.randn(1, 1, 64, 32, 32, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert (legacy(x) - current(x)).abs().max() > 1e-4
