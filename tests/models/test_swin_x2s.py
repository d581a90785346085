"""Swin-X2S: official key layout (all variants, on the meta device), numerical equality with the
official forward, shapes, gradients, loss, inference rule and the key maps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from medswin.errors import ModelCardError
from medswin.models import create_model, list_models, load_foreign_weights, model_config, official_key_map
from medswin.models.checkpoints import read_state_dict
from medswin.models.inputs import ModelInputError
from medswin.models.swin_x2s import SWIN_X2S_PARAMETERS, predict_labels, swin_x2s_loss
from medswin.models.swin_x2s_modules import DepthExpand

#: every key and shape of the official Swin-X2S checkpoints (tiny to large), listed from the published files
REFERENCE = Path(__file__).parent / "data" / "swin_x2s_official_state_dict_shapes.json"
FORWARD = Path(__file__).parent / "data" / "swin_x2s_official_forward.json"
TINY = {"img_size": (32, 32, 64), "feature_size": 12, "depths": (2, 2, 2, 2), "out_channels": 3}


def _official_table() -> dict:
    return json.loads(REFERENCE.read_text())


@pytest.mark.parametrize("variant", ["tiny", "small", "base", "large"])
def test_official_keys_shapes_and_parameter_count(variant: str) -> None:
    """Every official key and shape at the TotalSeg-all config, through the official key map; no weights allocated."""
    table = _official_table()
    config = table["__config__"] if "__config__" in table else table[variant]["__config__"]
    with torch.device("meta"):
        net = create_model(f"swin_x2s_{variant}", **config)
    official = {k: torch.empty(s, device="meta") for k, s in table[variant].items() if k != "__config__"}
    notes: list[str] = []
    mapped = official_key_map("swin_x2s_official")(official, net, notes)
    ours = {k: tuple(t.shape) for k, t in net.state_dict().items()}
    assert {k: tuple(t.shape) for k, t in mapped.items()} == ours
    masks = sum(k.endswith("attn_mask") for k in official)
    assert masks == (6 if variant in ("tiny", "small") else 12)
    assert len(official) == len(ours) + masks
    assert any("attn_mask" in n for n in notes)
    count = sum(p.numel() for p in net.parameters())
    assert count == SWIN_X2S_PARAMETERS[variant]
    published_millions = {"tiny": 32.56, "small": 130.07, "base": 313.85, "large": 557.80}[variant]
    assert abs(count / 1e6 - published_millions) < 0.01


def _seeded_official_weights(keys: list, seed: int, scale: float) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        key: torch.randn(shape, generator=g) * scale
        for key, shape in keys
        if not key.endswith(("relative_position_index", "attn_mask"))
    }


def test_forward_equals_official_model() -> None:
    """Same weights, same inputs: our logits equal the official implementation's (fixture made with its code)."""
    ref = json.loads(FORWARD.read_text())
    cfg = ref["config"]
    net = create_model("swin_x2s", **cfg).eval()
    weights = _seeded_official_weights(ref["official_keys"], ref["weight_seed"], ref["weight_scale"])
    report = load_foreign_weights(net, weights, "swin_x2s_official")
    assert report.complete, report.summary()
    g = torch.Generator().manual_seed(ref["input_seed"])
    size = (1, cfg["in_channels"], cfg["img_size"][0], cfg["img_size"][2])
    ap, lateral = torch.rand(size, generator=g), torch.rand(size, generator=g)
    with torch.no_grad():
        out_ap, out_lat = net(ap, lateral)
    sample = (slice(None), slice(None), slice(None, None, 8), slice(None, None, 8), slice(None, None, 8))
    shape = tuple(ref["sample_shape"])
    expected_ap = torch.tensor(ref["logits_ap"]).view(shape)
    expected_lat = torch.tensor(ref["logits_lateral"]).view(shape)
    torch.testing.assert_close(out_ap[sample], expected_ap, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out_lat[sample], expected_lat, atol=1e-4, rtol=1e-4)
    # the two branches differ (different projection axes), so the check covers both
    assert (expected_ap - expected_lat).abs().max() > 1e-2


def test_variants_registered_with_official_settings() -> None:
    names = list_models()
    for variant in ("tiny", "small", "base", "large"):
        assert f"swin_x2s_{variant}" in names
    assert "swin_x2s" in names
    small = model_config("swin_x2s_small")
    assert (small.feature_size, small.depths, small.num_heads) == (64, (2, 2, 6, 2), (2, 4, 8, 16))
    large = model_config("swin_x2s_large", out_channels=26)
    assert (large.feature_size, large.num_heads, large.out_channels) == (128, (4, 8, 16, 32), 26)
    base = model_config("swin_x2s_base")
    assert (base.img_size, base.window_size, base.fusion_depths) == ((128, 128, 160), (7, 7), (1,) * 6)


def test_forward_shapes_and_gradients() -> None:
    torch.manual_seed(0)
    net = create_model("swin_x2s_tiny", **TINY).train()
    ap, lateral = torch.rand(1, 1, 32, 64), torch.rand(1, 1, 32, 64)
    out_ap, out_lat = net(ap, lateral)
    assert out_ap.shape == out_lat.shape == (1, 3, 32, 32, 64)
    target = torch.randint(0, 3, (1, 1, 32, 32, 64))
    swin_x2s_loss(out_ap, out_lat, target).backward()
    no_grad = [n for n, p in net.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert no_grad == []
    # the shared Swin encoder and the cross-attention get gradient from both branches' losses
    assert net.swinViT.patch_embed.proj.weight.grad.abs().sum() > 0
    assert net.cross_atte6.layer[0].attn.query.weight.grad.abs().sum() > 0


def test_each_view_reaches_both_branches() -> None:
    """Through the bottleneck cross-attention, changing only the lateral view changes the AP branch too."""
    torch.manual_seed(1)
    net = create_model("swin_x2s_tiny", **TINY).eval()
    ap, lateral = torch.rand(1, 1, 32, 64), torch.rand(1, 1, 32, 64)
    with torch.no_grad():
        a1, b1 = net(ap, lateral)
        a2, b2 = net(ap, lateral.flip(-1))
    assert (a1 - a2).abs().max() > 1e-4 and (b1 - b2).abs().max() > 1e-4


def test_sdpa_window_attention_matches() -> None:
    torch.manual_seed(2)
    plain = create_model("swin_x2s_tiny", **TINY).eval()
    fast = create_model("swin_x2s_tiny", **TINY, use_flash_attention=True).eval()
    fast.load_state_dict(plain.state_dict())
    ap, lateral = torch.rand(1, 1, 32, 64), torch.rand(1, 1, 32, 64)
    with torch.no_grad():
        for x, y in zip(plain(ap, lateral), fast(ap, lateral), strict=True):
            torch.testing.assert_close(x, y, atol=1e-4, rtol=1e-4)


def test_depth_expand_puts_the_new_axis_where_the_view_projects() -> None:
    module = DepthExpand(4)
    with torch.no_grad():
        module.weight.copy_(torch.arange(1.0, 5.0).view(4, 1, 1, 1, 1))
        module.bias.copy_(torch.tensor([0.0, 10.0, 20.0, 30.0]))
    x = torch.randn(2, 3, 5, 6)  # (B, H, W, C)
    feature = x.permute(0, 3, 1, 2)  # (B, C, H, W)
    ap = module(x, axis=1)  # (B, C, H, D, W): AP view, new axis = volume Y
    lateral = module(x, axis=0)  # (B, C, D, H, W): lateral view, new axis = volume X
    assert ap.shape == (2, 6, 3, 4, 5) and lateral.shape == (2, 6, 4, 3, 5)
    for d in range(4):
        torch.testing.assert_close(ap[:, :, :, d], feature * (d + 1) + 10.0 * d)
        torch.testing.assert_close(lateral[:, :, d], feature * (d + 1) + 10.0 * d)
    with pytest.raises(ValueError, match="axis"):
        module(x, axis=2)


def test_inference_sums_branch_logits() -> None:
    # branch A prefers class 1 weakly, branch B prefers class 2 strongly: the sum picks 2
    a = torch.tensor([0.0, 2.0, 1.5]).view(1, 3, 1, 1, 1)
    b = torch.tensor([0.0, 0.0, 3.0]).view(1, 3, 1, 1, 1)
    assert predict_labels(a, b).item() == 2
    assert a.argmax(1).item() == 1
    a = torch.tensor([0.0, 5.0, 1.0]).view(1, 3, 1, 1, 1)
    assert predict_labels(a, b).item() == 1  # 5 + 0 > 1 + 3
    assert predict_labels(torch.randn(2, 4, 3, 3, 3), torch.randn(2, 4, 3, 3, 3)).shape == (2, 3, 3, 3)


@pytest.mark.filterwarnings("ignore:reduction")
def test_loss_is_dice_ce_plus_mutual_kl() -> None:
    from monai.losses import DiceCELoss

    torch.manual_seed(3)
    a, b = torch.randn(2, 3, 4, 4, 4), torch.randn(2, 3, 4, 4, 4)
    y = torch.randint(0, 3, (2, 1, 4, 4, 4))
    dice_ce = DiceCELoss(to_onehot_y=True, softmax=True)
    kl_ab = F.kl_div(F.log_softmax(a, 1), F.softmax(b, 1), reduction="mean")
    kl_ba = F.kl_div(F.log_softmax(b, 1), F.softmax(a, 1), reduction="mean")
    expected = 0.5 * (dice_ce(a, y) + kl_ab) + 0.5 * (dice_ce(b, y) + kl_ba)
    torch.testing.assert_close(swin_x2s_loss(a, b, y), expected)
    # identical branches: the mutual term vanishes
    torch.testing.assert_close(swin_x2s_loss(a, a, y), dice_ce(a, y))
    torch.testing.assert_close(
        swin_x2s_loss(a, b, y, mutual_weight=0.0), 0.5 * (dice_ce(a, y) + dice_ce(b, y))
    )
    assert kl_ab > 0 and kl_ba > 0


def test_input_and_config_errors() -> None:
    net = create_model("swin_x2s_tiny", **TINY)
    with pytest.raises(ModelInputError, match=r"\(32, 64\)"):
        net(torch.rand(1, 1, 32, 32), torch.rand(1, 1, 32, 64))
    with pytest.raises(ModelInputError, match="input channel"):
        net(torch.rand(1, 2, 32, 64), torch.rand(1, 2, 32, 64))
    with pytest.raises(ModelInputError, match="lateral batch"):
        net(torch.rand(2, 1, 32, 64), torch.rand(1, 1, 32, 64))
    with pytest.raises(ModelCardError, match="X == Y"):
        create_model("swin_x2s_tiny", img_size=(32, 64, 64))
    with pytest.raises(ModelCardError, match="multiple of 32"):
        create_model("swin_x2s_tiny", img_size=(32, 32, 40))
    with pytest.raises(ModelCardError, match="spatial_dims"):
        create_model("swin_x2s_tiny", spatial_dims=2)
    with pytest.raises(ModelCardError, match="heads"):
        create_model("swin_x2s_tiny", num_heads=(1, 2, 4, 7))


def _to_official_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {
        k.replace(".mlp.linear1.", ".mlp.fc1.").replace(".mlp.linear2.", ".mlp.fc2."): v
        for k, v in state.items()
    }


def test_official_checkpoint_file_loads_exactly(tmp_path: Path) -> None:
    """A trainer-style file (module. prefix, fc1/fc2, attn_mask, optimizer state) loads every tensor."""
    torch.manual_seed(4)
    source = create_model("swin_x2s_tiny", **TINY)
    official = {f"module.{k}": v.clone() for k, v in _to_official_names(source.state_dict()).items()}
    official["module.swinViT.layers.0.blocks.1.attn_mask"] = torch.zeros(6, 49, 49)
    path = tmp_path / "model.pt"
    torch.save({"epoch": 3, "best_acc": 0.5, "state_dict": official}, path)
    target = create_model("swin_x2s_tiny", **TINY)
    report = load_foreign_weights(target, read_state_dict(path), "swin_x2s_official", source=str(path))
    assert report.complete, report.summary()
    for key, value in source.state_dict().items():
        torch.testing.assert_close(target.state_dict()[key], value)


def test_imagenet_swin_fills_the_encoder_only() -> None:
    """Microsoft ImageNet layout: patch kernel subsampled and channel-tiled, head/last norm skipped."""
    torch.manual_seed(5)
    model = create_model("swin_x2s_tiny", **TINY, in_channels=2)
    encoder = {}
    for key, value in model.state_dict().items():
        name = key.removeprefix("swinViT.")
        parts = name.split(".")
        side_norm = parts[0] == "layers" and parts[2] == "norm"
        microsoft_lacks = name.startswith(("norm.", "layers.3.downsample.")) or side_norm
        if (
            key.startswith("swinViT.")
            and not microsoft_lacks
            and not name.endswith("relative_position_index")
        ):
            encoder[name] = torch.randn(value.shape)
    rgb = torch.randn(12, 3, 4, 4)
    imagenet = {
        **_to_official_names(encoder),
        "patch_embed.proj.weight": rgb,
        "norm.weight": torch.ones(96),
        "norm.bias": torch.zeros(96),
        "head.weight": torch.randn(1000, 96),
        "head.bias": torch.zeros(1000),
        "layers.1.blocks.1.attn_mask": torch.zeros(4, 49, 49),
    }
    report = load_foreign_weights(model, {"model": imagenet}["model"], "swin_x2s_imagenet")
    assert not report.mismatched and not report.unexpected
    loaded = model.state_dict()
    expected_patch = torch.cat([rgb[:, :, ::2, ::2]] * 10, dim=1)[:, :2]
    torch.testing.assert_close(loaded["swinViT.patch_embed.proj.weight"], expected_patch)
    key = "swinViT.layers.2.blocks.0.mlp.linear1.weight"
    torch.testing.assert_close(loaded[key], encoder["layers.2.blocks.0.mlp.linear1.weight"])
    assert all(not k.startswith("swinViT.") or "norm" in k or "downsample" in k for k in report.missing)
    assert any(k.startswith("encoder10.") for k in report.missing)
    assert any("skipped" in n for n in report.notes)
