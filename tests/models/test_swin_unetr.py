"""SwinUNETR registry entry: MONAI's network built from a config dataclass, with clear input errors."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from monai.networks.nets import SwinUNETR

from medswin.errors import ModelCardError
from medswin.models import create_model, list_models, model_config
from medswin.models.inputs import ModelInputError
from medswin.models.swin_unetr import SwinUNETRConfig


@pytest.mark.parametrize("use_v2", [False, True])
@pytest.mark.parametrize("legacy", [False, True])
def test_forward_3d_tiny(use_v2: bool, legacy: bool) -> None:
    net = create_model(
        "swin_unetr", in_channels=2, out_channels=3, feature_size=12, use_v2=use_v2, legacy_merging=legacy
    )
    assert isinstance(net, SwinUNETR)
    with torch.no_grad():
        out = net.eval()(torch.randn(1, 2, 32, 32, 64))
    assert out.shape == (1, 3, 32, 32, 64)
    assert torch.isfinite(out).all()


def test_forward_2d_tiny() -> None:
    net = create_model("swin_unetr", spatial_dims=2, in_channels=1, out_channels=4, feature_size=12).eval()
    with torch.no_grad():
        assert net(torch.randn(2, 1, 64, 64)).shape == (2, 4, 64, 64)


def test_v2_variant_adds_residual_stage_blocks() -> None:
    assert {"swin_unetr", "swin_unetr_v2"} <= set(list_models())
    assert model_config("swin_unetr_v2").use_v2 is True
    keys = create_model("swin_unetr_v2", feature_size=12).state_dict().keys()
    assert any(k.startswith("swinViT.layers1c.") for k in keys)


def test_config_mirrors_monai_constructor() -> None:
    import inspect

    monai_args = set(inspect.signature(SwinUNETR.__init__).parameters) - {"self"}
    ours = {f.name for f in dataclasses.fields(SwinUNETRConfig)}
    # every MONAI argument we expose keeps its name; the rest are Hyena options, norm_layer and downsample
    assert ours - {"legacy_merging"} <= monai_args
    assert monai_args - ours <= {"norm_layer", "downsample"} | {a for a in monai_args if "hyena" in a}


def test_base_model_has_published_layout_and_size() -> None:
    net = create_model("swin_unetr", in_channels=1, out_channels=14, feature_size=48)
    assert len(net.state_dict()) == 159  # as listed for MONAI 1.6.1 in the reference notes
    params = sum(p.numel() for p in net.parameters())
    assert 62.0e6 < params < 62.3e6  # research-contributions README: 62.1 M


def test_wrong_channel_count_is_named() -> None:
    net = create_model("swin_unetr", in_channels=4, out_channels=3, feature_size=12).eval()
    with pytest.raises(ModelInputError, match="4 input channel"):
        net(torch.zeros(1, 1, 64, 64, 64))


def test_roi_not_divisible_by_32() -> None:
    net = create_model("swin_unetr", feature_size=12).eval()
    with pytest.raises(ModelInputError, match="divisible by 32"):
        net(torch.zeros(1, 1, 64, 64, 80))


def test_single_voxel_bottleneck_is_explained() -> None:
    net = create_model("swin_unetr", feature_size=12).eval()
    with pytest.raises(ModelInputError, match="bottleneck"):
        net(torch.zeros(1, 1, 32, 32, 32))


def test_wrong_rank_is_named() -> None:
    net = create_model("swin_unetr", feature_size=12).eval()
    with pytest.raises(ModelInputError, match="5-D"):
        net(torch.zeros(1, 64, 64, 64))


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"feature_size": 20}, "divisible by 12"),
        ({"depths": (2, 2)}, "4 entries"),
        ({"spatial_dims": 4}, "2 or 3"),
    ],
)
def test_invalid_config(overrides: dict, match: str) -> None:
    with pytest.raises(ModelCardError, match=match):
        create_model("swin_unetr", **overrides)


def test_unknown_option_lists_valid_ones() -> None:
    with pytest.raises(ModelCardError, match="feature_size"):
        create_model("swin_unetr", featuresize=12)


def test_built_models_pickle() -> None:
    import pickle

    for name, kwargs, shape in [
        ("swin_unetr", {"feature_size": 12, "legacy_merging": True}, (1, 1, 32, 32, 64)),
        ("attention_swin_unet", {"img_size": 64, "embed_dim": 12, "window_size": 4}, (1, 3, 64, 64)),
    ]:
        net = create_model(name, **kwargs).eval()
        clone = pickle.loads(pickle.dumps(net))
        x = torch.randn(shape)
        with torch.no_grad():
            torch.testing.assert_close(clone(x), net(x))
        with pytest.raises(ModelInputError):
            clone(torch.zeros(1, 7, *shape[2:]))
