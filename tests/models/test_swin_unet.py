"""Swin-Unet and Attention Swin U-Net: shapes, published key layouts and the official key maps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from medswin.errors import ModelCardError
from medswin.models import create_model, load_foreign_weights
from medswin.models.inputs import ModelInputError
from medswin.models.swin_unet_modules import PatchExpand, SwinUnet

LAYOUTS = json.loads((Path(__file__).parent / "data" / "swin_unet_layouts.json").read_text())
TINY = {"img_size": 64, "embed_dim": 12, "window_size": 4}


def _fixture(layout: str, prefix: str = "", seed: int = 0) -> dict[str, torch.Tensor]:
    """A made-up state_dict with exactly the published key names and shapes of ``layout``."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, shape in LAYOUTS[layout].items():
        if key.endswith("relative_position_index"):
            out[prefix + key] = torch.zeros(shape, dtype=torch.long)
        else:
            out[prefix + key] = torch.randn(shape, generator=g)
    return out


@pytest.mark.parametrize("name", ["swin_unet", "attention_swin_unet"])
@pytest.mark.parametrize("window", [4, 7])
def test_forward_tiny(name: str, window: int) -> None:
    net = create_model(
        name, **{**TINY, "window_size": window}, in_channels=1, out_channels=3, depths=(2, 2, 2, 2)
    ).eval()
    with torch.no_grad():
        assert net(torch.randn(2, 1, 64, 64)).shape == (2, 3, 64, 64)
        assert net(torch.randn(1, 1, 96, 64)).shape == (1, 3, 96, 64)  # any multiple of 32, not only img_size


def test_trains_tiny() -> None:
    net = create_model("attention_swin_unet", **TINY, in_channels=3, out_channels=2, depths=(1, 1, 1, 1))
    net.train()
    loss = net(torch.randn(2, 3, 64, 64)).square().mean()
    loss.backward()
    assert net.skip_attention[0].layers[0][0].to_q.weight.grad is not None
    assert net.patch_embed.proj.weight.grad.abs().sum() > 0


def test_patch_expand_channel_factorisation() -> None:
    """Expanded channels are read as (row offset, column offset, C_out) with the row offset outermost."""
    torch.manual_seed(0)
    module = PatchExpand(8, scale=2)  # 8 -> 4 * 4 channels -> 2x2 block of 4
    x = torch.randn(1, 3, 5, 8)
    with torch.no_grad():
        out = module(x)
        flat = module.expand(x)
    assert out.shape == (1, 6, 10, 4)
    for p1 in (0, 1):
        for p2 in (0, 1):
            part = flat[..., (2 * p1 + p2) * 4 : (2 * p1 + p2 + 1) * 4]
            expected = F.layer_norm(part, (4,), module.norm.weight, module.norm.bias)
            torch.testing.assert_close(out[:, p1::2, p2::2, :], expected)


def test_default_config_is_published_swin_unet() -> None:
    net = create_model("swin_unet", in_channels=3, out_channels=9)
    assert sum(p.numel() for p in net.parameters()) == 27_168_900  # Swin-Unet paper / official code: 27.17 M


def test_official_swin_unet_checkpoint_loads_every_key() -> None:
    net = create_model("swin_unet", in_channels=3, out_channels=9)
    fixture = _fixture("swin_unet_tiny_224_9cls", prefix="module.swin_unet.")
    report = load_foreign_weights(net, fixture, "swin_unet_official", source="fixture")
    assert report.complete, report.summary()
    own = net.state_dict()
    # every published key has a place in the model (buffers are recomputed, not stored)
    buffers = [
        k for k in LAYOUTS["swin_unet_tiny_224_9cls"] if k.endswith(("attn_mask", "relative_position_index"))
    ]
    assert len(report.loaded) == len(LAYOUTS["swin_unet_tiny_224_9cls"]) - len(buffers)
    assert len(own) == len(report.loaded) + len([k for k in own if k.endswith("relative_position_index")])
    pairs = {
        "layers.1.blocks.1.mlp.linear1.weight": "layers.1.blocks.1.mlp.fc1.weight",
        "layers_up.2.upsample.expand.weight": "layers_up.2.upsample.expand.weight",
        "concat_back_dim.3.bias": "concat_back_dim.3.bias",
        "up.expand.weight": "up.expand.weight",
        "output.weight": "output.weight",
    }
    for ours, theirs in pairs.items():
        torch.testing.assert_close(own[ours], fixture["module.swin_unet." + theirs])


def test_official_relative_position_index_matches_ours() -> None:
    # Microsoft formula: (dy + w - 1) * (2w - 1) + (dx + w - 1) over all token pairs of a w x w window
    w = 7
    coords = torch.stack(torch.meshgrid(torch.arange(w), torch.arange(w), indexing="ij")).flatten(1)
    rel = coords[:, :, None] - coords[:, None, :] + (w - 1)
    expected = rel[0] * (2 * w - 1) + rel[1]
    net = create_model("swin_unet", img_size=224, embed_dim=12)
    torch.testing.assert_close(net.layers[0].blocks[1].attn.relative_position_index, expected)
    assert list(net.layers[0].blocks[1].attn.relative_position_bias_table.shape) == [169, 3]


def test_official_attswinunet_checkpoint_loads_every_key() -> None:
    net = create_model("attention_swin_unet", in_channels=3, out_channels=9, depths=(2, 2, 2, 2))
    fixture = _fixture("attswinunet_2222_9cls")
    report = load_foreign_weights(
        net, {"module." + k: v for k, v in fixture.items()}, "attention_swin_unet_official"
    )
    assert report.complete, report.summary()
    own = net.state_dict()
    for ours, theirs in {
        "skip_attention.1.layers.0.0.to_out.weight": "decoder.Crossvit_layer.1.layers.0.0.fn.fn.to_out.0.weight",
        "skip_attention.2.layers.1.1.norm.bias": "decoder.Crossvit_layer.2.layers.1.1.fn.norm.bias",
        "skip_attention.0.layers.1.0.to_kv.weight": "decoder.Crossvit_layer.0.layers.1.0.fn.fn.to_kv.weight",
        "patch_embed.proj.weight": "encoder.patch_embed.proj.weight",
        "norm.weight": "encoder.norm.weight",
        "layers_up.3.blocks.0.mlp.linear2.bias": "decoder.layers_up.3.blocks.0.mlp.fc2.bias",
    }.items():
        torch.testing.assert_close(own[ours], fixture[theirs])
    assert any("never uses" in n for n in report.notes)


@pytest.mark.parametrize(
    "layout", ["microsoft_swin_tiny_patch4_window7_224", "timm_swin_tiny_patch4_window7_224"]
)
def test_imagenet_swin_t_fills_encoder_and_mirrors_decoder(layout: str) -> None:
    net = create_model("swin_unet", in_channels=1, out_channels=9)
    raw = _fixture(layout)
    report = load_foreign_weights(net, raw, "swin_unet_imagenet")
    own = net.state_dict()
    assert not report.mismatched
    # what Swin-Unet's own load_from leaves random: expansions, skip linears, norm_up, final expand, head
    assert sorted(report.missing) == sorted(
        k
        for k in own
        if k.startswith(("layers_up.0.", "concat_back_dim.", "norm_up.", "up.", "output."))
        or ".upsample." in k
        and not k.endswith("relative_position_index")
    )
    # Swin-T stage 3 has 6 blocks; the tiny Swin-Unet uses 2
    assert report.unexpected and all(
        k.startswith(("layers.2.blocks.2", "layers.2.blocks.3", "layers.2.blocks.4", "layers.2.blocks.5"))
        for k in report.unexpected
    )
    torch.testing.assert_close(
        own["layers_up.1.blocks.1.attn.qkv.weight"], raw["layers.2.blocks.1.attn.qkv.weight"]
    )
    torch.testing.assert_close(
        own["layers_up.3.blocks.0.mlp.linear1.weight"], raw["layers.0.blocks.0.mlp.fc1.weight"]
    )
    torch.testing.assert_close(
        own["patch_embed.proj.weight"], raw["patch_embed.proj.weight"].sum(1, keepdim=True)
    )
    merge = (
        "layers.1.downsample.reduction.weight"
        if layout.startswith("timm")
        else "layers.0.downsample.reduction.weight"
    )
    torch.testing.assert_close(own["layers.0.downsample.reduction.weight"], raw[merge])


def test_gray_input_equals_repeated_rgb_after_folding() -> None:
    torch.manual_seed(0)
    rgb = create_model("swin_unet", **TINY, in_channels=3, out_channels=4).eval()
    official = {
        "swin_unet." + k.replace("mlp.linear1", "mlp.fc1").replace("mlp.linear2", "mlp.fc2"): v
        for k, v in rgb.state_dict().items()
    }
    gray = create_model("swin_unet", **TINY, in_channels=1, out_channels=4).eval()
    report = load_foreign_weights(gray, official, "swin_unet_official")
    assert report.complete and any("summed" in n for n in report.notes)
    x = torch.randn(1, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(gray(x), rgb(x.repeat(1, 3, 1, 1)), rtol=1e-4, atol=1e-5)


def test_skip_attention_changes_output_only_when_enabled() -> None:
    torch.manual_seed(0)
    att = create_model("attention_swin_unet", **TINY, depths=(2, 2, 2, 2)).eval()
    plain = SwinUnet(
        in_channels=3, out_channels=1, img_size=64, embed_dim=12, window_size=4, skip_attention=False
    ).eval()
    plain.load_state_dict({k: v for k, v in att.state_dict().items() if not k.startswith("skip_attention.")})
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert (att(x) - plain(x)).abs().max() > 1e-4
        att.skip_attention_levels = 0
        torch.testing.assert_close(att(x), plain(x))


def test_wrong_channels_and_sizes() -> None:
    net = create_model("swin_unet", **TINY, in_channels=1).eval()
    with pytest.raises(ModelInputError, match="1 input channel"):
        net(torch.zeros(1, 3, 64, 64))
    with pytest.raises(ModelInputError, match="divisible by 32"):
        net(torch.zeros(1, 1, 64, 48))


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"img_size": 100}, "divisible"),
        ({"embed_dim": 10}, "heads"),
        ({"num_heads": (3, 6)}, "same length"),
        ({"skip_attention_levels": 4}, "skip_attention_levels"),
    ],
)
def test_invalid_config(overrides: dict, match: str) -> None:
    with pytest.raises(ModelCardError, match=match):
        create_model("swin_unet", **overrides)
