"""The patch-merging flag of imported SwinUNETR files: never guessed, and a pulled legacy file computes
what MONAI <= 1.4 computed (the standard of tests/models/test_legacy_merging.py: the old order written out)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from merging_oracle import monai13_merging
from monai.networks.nets import SwinUNETR
from weights_factory import Site, saved, tiny_net

from medswin.cli.main import main
from medswin.models import load_checkpoint, preset_card, read_checkpoint_card


def _monai13_network(state: dict) -> SwinUNETR:
    """Today's MONAI SwinUNETR with each stage's merging replaced by the hand-written old order."""
    net = SwinUNETR(in_channels=1, out_channels=14, feature_size=12).eval()
    net.load_state_dict(state)
    for stage in range(1, 5):
        down = getattr(net.swinViT, f"layers{stage}")[0].downsample
        down.forward = lambda x, m=down: monai13_merging(m, x)
    return net


def test_pulled_legacy_file_computes_the_monai13_function(site: Site) -> None:
    assert main(["-q", "weights", "pull", "swin_unetr_btcv"]) == 0
    model, card = load_checkpoint(site.home / "weights" / "swin_unetr_btcv.safetensors")
    assert card.config["legacy_merging"] is True
    x = torch.randn(1, 1, 64, 32, 32, generator=torch.Generator().manual_seed(7))
    today = SwinUNETR(in_channels=1, out_channels=14, feature_size=12).eval()
    today.load_state_dict(site.fixtures.btcv_state)
    with torch.no_grad():
        ours, old, new = model(x), _monai13_network(site.fixtures.btcv_state)(x), today(x)
    torch.testing.assert_close(ours, old, rtol=1e-4, atol=1e-4)
    # the guard: with the same weights, today's order computes something else, and labels change
    assert (ours - new).abs().max() > 1e-2
    assert (ours.argmax(1) != new.argmax(1)).float().mean() > 0.01


@pytest.fixture
def tiny_card_file(tmp_path: Path) -> Path:
    card = preset_card("swin_unetr_btcv")
    card = card.replace(id="btcv_tiny", config={**card.config, "feature_size": 12})
    path = tmp_path / "btcv_tiny.json"
    path.write_text(card.to_json())
    return path


def test_auto_refuses_to_guess_on_an_unknown_file(
    tmp_path: Path, tiny_card_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "someone_elses.pt"
    source.write_bytes(saved({"state_dict": tiny_net(5, in_channels=1, out_channels=14).state_dict()}))
    out = tmp_path / "out.safetensors"
    argv = ["import-checkpoint", str(source), "--card", str(tiny_card_file), "-o", str(out)]
    for extra in ([], ["--legacy-merging", "auto"]):  # auto is the default: never a silent flag
        assert main([*argv, *extra]) == 2
        err = capsys.readouterr().err
        assert "someone_elses.pt: cannot tell which MONAI version" in err
        assert "--legacy-merging yes" in err and "--legacy-merging no" in err and "11%" in err
        assert not out.exists()
    assert main([*argv, "--legacy-merging", "yes"]) == 0
    assert read_checkpoint_card(out).config["legacy_merging"] is True


def test_auto_reads_a_stored_monai_version(tmp_path: Path, tiny_card_file: Path) -> None:
    state = tiny_net(5, in_channels=1, out_channels=14).state_dict()
    for version, expected in (("1.5.1", False), ("1.3.2", True)):
        source = tmp_path / f"trained_{version}.pt"
        source.write_bytes(saved({"state_dict": state, "monai_version": version}))
        out = tmp_path / f"{version}.safetensors"
        assert (
            main(["-q", "import-checkpoint", str(source), "--card", str(tiny_card_file), "-o", str(out)]) == 0
        )
        card = read_checkpoint_card(out)
        assert card.config["legacy_merging"] is expected
        assert f"stores monai_version {version}" in card.provenance["legacy_merging"]


def test_auto_knows_the_registry_checksums(site: Site, tmp_path: Path, tiny_card_file: Path) -> None:
    source = tmp_path / "model.pt"  # the bundle's published file, renamed: its md5 gives it away
    source.write_bytes(site.fixtures.bundle)
    out = tmp_path / "zoo.safetensors"
    assert main(["-q", "import-checkpoint", str(source), "--card", str(tiny_card_file), "-o", str(out)]) == 0
    card = read_checkpoint_card(out)
    assert card.config["legacy_merging"] is True
    assert "published file of swin_unetr_btcv_bundle" in card.provenance["legacy_merging"]


def test_flag_is_refused_for_models_without_patch_merging(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "x.pt"
    source.write_bytes(saved({"w": torch.zeros(1)}))
    argv = [
        "import-checkpoint",
        str(source),
        "--preset",
        "swin_unet_synapse",
        "-o",
        str(tmp_path / "o.safetensors"),
    ]
    assert main([*argv, "--legacy-merging", "yes"]) == 2
    assert "swin_unet, which has no MONAI patch merging" in capsys.readouterr().err
