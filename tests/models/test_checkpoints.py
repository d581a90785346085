"""medswin safetensors checkpoints, safe reading of foreign files and the SwinUNETR key maps."""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from monai.networks.nets import SwinUNETR

from medswin.errors import CheckpointError
from medswin.models import (
    import_checkpoint,
    load_checkpoint,
    load_foreign_weights,
    official_key_map,
    preset_card,
    read_checkpoint_card,
    read_state_dict,
    register_key_map,
    save_checkpoint,
)
from medswin.models.key_maps import get_key_map


@pytest.fixture
def tiny_btcv():
    """The BTCV preset card at feature_size 12 (same key names as the published feature_size 48)."""
    card = preset_card("swin_unetr_btcv")
    return card.replace(id="btcv_tiny", config={**card.config, "feature_size": 12})


def _research_file(path: Path, state: dict[str, torch.Tensor], *, numpy1_names: bool = False) -> Path:
    """A checkpoint shaped like research-contributions' trainer output (numpy float64 best_acc, DDP prefix)."""
    payload = {
        "epoch": 4999,
        "best_acc": np.float64(0.8186),
        "state_dict": {f"module.{k}": v for k, v in state.items()},
    }
    torch.save(payload, path)
    if numpy1_names:  # files written under numpy 1.x name the scalar constructor numpy.core.multiarray
        with zipfile.ZipFile(path) as src:
            entries = [(info.filename, src.read(info.filename)) for info in src.infolist()]
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as dst:
            for name, data in entries:
                if name.endswith("data.pkl"):
                    assert b"numpy._core.multiarray\n" in data
                    data = data.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
                dst.writestr(name, data)
    return path


# ------------------------------------------------------------------------------ medswin format
def assert_same_function(loaded: torch.nn.Module, model: torch.nn.Module, x: torch.Tensor) -> None:
    """Bit-identical parameters and buffers, and the same outputs up to float32 kernel rounding.

    The weights are the round trip's claim and compare exactly. Outputs do not: oneDNN picks its
    blocking per CPU (AVX2 vs AVX-512) and per memory layout, so two copies of one network can
    differ in the last bits; 1e-5 is ~100 float32 ulps at these activations' scale, while a wrong
    card or a missing buffer changes outputs by orders of magnitude more.
    """
    own = model.state_dict()
    assert loaded.state_dict().keys() == own.keys()
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, own[key]), key
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=1e-5, atol=1e-5)


def test_save_load_roundtrip_gives_identical_outputs(tmp_path: Path, tiny_btcv) -> None:
    torch.manual_seed(0)
    model = tiny_btcv.create_model().eval()
    path = save_checkpoint(model, tiny_btcv, tmp_path / "btcv.safetensors")
    assert [p.name for p in tmp_path.iterdir()] == ["btcv.safetensors"]  # no temp file left behind
    loaded, card = load_checkpoint(path)
    assert card == tiny_btcv
    assert not loaded.training
    assert_same_function(loaded, model, torch.randn(1, 1, 64, 32, 32))
    assert read_checkpoint_card(path).labels[6] == "liver"


def test_roundtrip_2d_attention_model(tmp_path: Path) -> None:
    card = preset_card("attention_swin_unet_isic")
    card = card.replace(
        id="isic_tiny",
        config={**card.config, "img_size": 64, "embed_dim": 12, "window_size": 4, "depths": [1, 1, 1, 1]},
    )
    model = card.create_model().eval()
    loaded, _ = load_checkpoint(save_checkpoint(model, card, tmp_path / "isic.safetensors"))
    assert_same_function(loaded, model, torch.randn(1, 3, 64, 64))


def test_card_not_matching_weights_lists_keys(tmp_path: Path, tiny_btcv) -> None:
    path = save_checkpoint(tiny_btcv.create_model(), tiny_btcv, tmp_path / "a.safetensors")
    wrong = tiny_btcv.replace(config={**tiny_btcv.config, "feature_size": 24})
    with pytest.raises(
        CheckpointError,
        match=r"do not match the model card.*\d+ mismatched shape: decoder1.*file \[12, 24, 3, 3, 3\] vs card \[24, 48, 3, 3, 3\]",
    ):
        save_checkpoint(tiny_btcv.create_model(), wrong, tmp_path / "b.safetensors")
    assert not (tmp_path / "b.safetensors").exists()
    # a tampered card inside the file is caught at load time, naming the file
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(path))
    meta = {"format": "medswin", "format_version": "1", "card": wrong.to_json()}
    save_file(tensors, str(tmp_path / "tampered.safetensors"), metadata=meta)
    with pytest.raises(CheckpointError, match="tampered.safetensors.*do not match"):
        load_checkpoint(tmp_path / "tampered.safetensors")
    v2 = tiny_btcv.replace(config={**tiny_btcv.config, "use_v2": True})
    save_file(tensors, str(tmp_path / "v2.safetensors"), metadata={**meta, "card": v2.to_json()})
    with pytest.raises(CheckpointError, match=r"missing: swinViT\.layers1c"):
        load_checkpoint(tmp_path / "v2.safetensors")


def test_failed_save_keeps_existing_file(tmp_path: Path, tiny_btcv) -> None:
    path = save_checkpoint(tiny_btcv.create_model(), tiny_btcv, tmp_path / "keep.safetensors")
    before = path.read_bytes()
    other = preset_card("swin_unet_synapse")
    with pytest.raises(CheckpointError):
        save_checkpoint(tiny_btcv.create_model(), other, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.safetensors"]


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("plain.safetensors", None, "without a medswin model card"),
        ("junk.safetensors", b"not a checkpoint", "not a readable"),
        ("model.pt", b"x", "PyTorch file"),
        ("absent.safetensors", "absent", "no such"),
    ],
)
def test_load_checkpoint_rejects_non_medswin_files(tmp_path: Path, name: str, content, match: str) -> None:
    path = tmp_path / name
    if content is None:
        from safetensors.torch import save_file

        save_file({"w": torch.zeros(2)}, str(path))
    elif content != "absent":
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(path)


def test_save_requires_safetensors_suffix(tmp_path: Path, tiny_btcv) -> None:
    with pytest.raises(CheckpointError, match=".safetensors"):
        save_checkpoint(tiny_btcv.create_model(), tiny_btcv, tmp_path / "model.pt")


# ------------------------------------------------------------------------------ foreign files
@pytest.mark.parametrize("numpy1_names", [False, True])
def test_research_contributions_checkpoint_imports_completely(
    tmp_path: Path, tiny_btcv, numpy1_names: bool
) -> None:
    torch.manual_seed(1)
    reference = SwinUNETR(
        in_channels=1, out_channels=14, feature_size=12
    )  # plain MONAI, as the trainer saved it
    src = _research_file(tmp_path / "model.pt", reference.state_dict(), numpy1_names=numpy1_names)
    model, report = import_checkpoint(src, tiny_btcv)
    assert report.complete, report.summary()
    assert report.key_map == "swin_unetr_research"
    assert not any("legacy_merging" in n for n in report.notes)  # the preset already uses the old order
    assert len(report.loaded) == len(reference.state_dict())
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(model.state_dict()[key], value, rtol=0, atol=0)


def test_brats_checkpoint_with_wrong_card_is_rejected(tmp_path: Path, tiny_btcv) -> None:
    brats_like = SwinUNETR(in_channels=4, out_channels=3, feature_size=12)
    src = _research_file(tmp_path / "model.pt", brats_like.state_dict())
    with pytest.raises(
        CheckpointError,
        match=r"mismatched +[1-9].*swinViT\.patch_embed\.proj\.weight checkpoint \[12, 4, 2, 2, 2\] vs model \[12, 1, 2, 2, 2\]",
    ):
        import_checkpoint(src, tiny_btcv)
    brats = preset_card("swin_unetr_brats21")
    brats = brats.replace(id="brats_tiny", config={**brats.config, "feature_size": 12})
    _, report = import_checkpoint(src, brats)
    assert report.complete


def test_patch_norm_checkpoint_gets_a_hint(tmp_path: Path, tiny_btcv) -> None:
    trained = SwinUNETR(in_channels=1, out_channels=14, feature_size=12, patch_norm=True)
    src = _research_file(tmp_path / "model.pt", trained.state_dict())
    with pytest.raises(CheckpointError, match="patch_norm: true"):
        import_checkpoint(src, tiny_btcv)


def test_self_supervised_encoder_fills_swinvit_only(tmp_path: Path) -> None:
    torch.manual_seed(2)
    donor = SwinUNETR(in_channels=1, out_channels=14, feature_size=12)
    ssl = {}
    for key, value in donor.swinViT.state_dict().items():  # model_swinvit.pt layout: module.* keys, fc1/fc2
        ssl["module." + key.replace("mlp.linear1", "mlp.fc1").replace("mlp.linear2", "mlp.fc2")] = value
    src = tmp_path / "model_swinvit.pt"
    torch.save({"epoch": 100, "state_dict": ssl}, src)
    card = preset_card("swin_unetr_btcv")
    card = card.replace(config={**card.config, "feature_size": 12})
    with pytest.raises(CheckpointError, match="--partial"):
        import_checkpoint(src, card, key_map="swin_unetr_ssl")
    model, report = import_checkpoint(src, card, key_map="swin_unetr_ssl", partial=True)
    assert not report.unexpected and not report.mismatched
    assert all(k.startswith("swinViT.") for k in report.loaded)
    assert len(report.loaded) == len(donor.swinViT.state_dict())
    assert report.missing and not any(k.startswith("swinViT.") for k in report.missing)
    current = card.replace(config={**card.config, "legacy_merging": False})
    _, report = import_checkpoint(src, current, key_map="swin_unetr_ssl", partial=True)
    assert any("legacy_merging: true" in n for n in report.notes)
    torch.testing.assert_close(
        model.swinViT.layers2[0].blocks[1].mlp.linear1.weight,
        donor.swinViT.layers2[0].blocks[1].mlp.linear1.weight,
    )


def test_malicious_pickle_is_refused_without_running(tmp_path: Path) -> None:
    sentinel = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {sentinel}",))

    zipped = tmp_path / "evil.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "payload": Exploit()}, zipped)
    legacy = tmp_path / "evil_legacy.pth"
    legacy.write_bytes(pickle.dumps(Exploit(), protocol=2))
    for path in (zipped, legacy):
        with pytest.raises(CheckpointError, match="refused or failed to load safely"):
            read_state_dict(path)
    assert not sentinel.exists()


@pytest.mark.parametrize(
    ("payload", "expected_keys"),
    [
        ({"w": torch.ones(2)}, ["w"]),
        ({"model": {"w": torch.ones(2)}, "epoch": 3}, ["w"]),
        ({"model_weights": {"w": torch.ones(2)}, "test_F1_score": 0.9}, ["w"]),
        ({"state_dict": {"w": torch.ones(2)}, "best_acc": np.float32(0.5)}, ["w"]),
    ],
)
def test_read_state_dict_unwraps_containers(tmp_path: Path, payload, expected_keys) -> None:
    path = tmp_path / "c.pt"
    torch.save(payload, path)
    assert sorted(read_state_dict(path)) == expected_keys


def test_read_state_dict_errors(tmp_path: Path) -> None:
    torch.save({"optimizer": {"lr": 0.1}}, tmp_path / "no_weights.pt")
    with pytest.raises(CheckpointError, match="no state_dict found.*'optimizer'"):
        read_state_dict(tmp_path / "no_weights.pt")
    (tmp_path / "broken.pt").write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="broken.pt"):
        read_state_dict(tmp_path / "broken.pt")
    with pytest.raises(CheckpointError, match="no such"):
        read_state_dict(tmp_path / "absent.pt")


def test_register_key_map_for_other_architectures(tmp_path: Path) -> None:
    calls = []

    def upper_case_map(state_dict, model, notes):
        calls.append(len(state_dict))
        notes.append("lower-cased keys")
        return {k.lower(): v for k, v in state_dict.items()}

    register_key_map("test_upper", upper_case_map, architectures=("swin_unet",), description="test")
    assert official_key_map("test_upper") is upper_case_map
    net = torch.nn.Linear(2, 3)
    report = load_foreign_weights(
        net, {"WEIGHT": torch.ones(3, 2), "BIAS": torch.ones(3), "EXTRA": torch.ones(1)}, "test_upper"
    )
    assert report.loaded == ["bias", "weight"] and report.unexpected == ["extra"] and calls == [3]
    assert "lower-cased keys" in report.summary()
    assert torch.equal(net.weight, torch.ones(3, 2))


def test_unknown_key_map_suggests() -> None:
    with pytest.raises(CheckpointError, match="Did you mean swin_unet_official"):
        get_key_map("swin_unet_oficial")


def test_key_map_must_fit_architecture(tmp_path: Path, tiny_btcv) -> None:
    torch.save({"w": torch.zeros(1)}, tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match="loads swin_unet"):
        import_checkpoint(tmp_path / "x.pt", tiny_btcv, key_map="swin_unet_official")


def test_ssl_map_equals_monai_load_from(tmp_path: Path) -> None:
    """MONAI's own ``SwinUNETR.load_from`` is an independent reference for the model_swinvit.pt layout."""
    torch.manual_seed(5)
    donor = SwinUNETR(in_channels=1, out_channels=2, feature_size=12)
    weights = {
        "state_dict": {
            "module." + k.replace("mlp.linear1", "mlp.fc1").replace("mlp.linear2", "mlp.fc2"): v
            for k, v in donor.swinViT.state_dict().items()
        }
    }
    torch.manual_seed(6)
    reference = SwinUNETR(in_channels=1, out_channels=2, feature_size=12)
    reference.load_from(weights)
    torch.manual_seed(6)
    ours = SwinUNETR(in_channels=1, out_channels=2, feature_size=12)
    report = load_foreign_weights(ours, weights["state_dict"], "swin_unetr_ssl")
    assert not report.unexpected and not report.mismatched
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[key], value, rtol=0, atol=0, msg=key)
