"""``medswin models``, ``medswin card`` and ``medswin import-checkpoint`` run in-process."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from monai.networks.nets import SwinUNETR

from medswin.cli.main import main
from medswin.models import load_checkpoint, preset_card


@pytest.fixture
def tiny_card(tmp_path: Path) -> Path:
    card = preset_card("swin_unetr_btcv")
    card = card.replace(id="btcv_tiny", config={**card.config, "feature_size": 12})
    path = tmp_path / "btcv_tiny.json"
    path.write_text(card.to_json())
    return path


@pytest.fixture
def research_checkpoint(tmp_path: Path) -> tuple[Path, SwinUNETR]:
    torch.manual_seed(3)
    net = SwinUNETR(in_channels=1, out_channels=14, feature_size=12)
    path = tmp_path / "model.pt"
    torch.save(
        {
            "epoch": 10,
            "best_acc": np.float64(0.5),
            "state_dict": {f"module.{k}": v for k, v in net.state_dict().items()},
        },
        path,
    )
    return path, net


def test_models_lists_registry_presets_and_key_maps(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--no-params"]) == 0
    out = capsys.readouterr().out
    for name in (
        "swin_unetr",
        "swin_unet",
        "attention_swin_unet",
        "swin_unetr_btcv",
        "swin_unetr_brats21",
        "swin_unetr_research",
        "swin_unetr_ssl",
    ):
        assert name in out


def test_models_json_has_parameter_counts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    presets = {p["id"]: p for p in doc["presets"]}
    assert 62.0e6 < presets["swin_unetr_btcv"]["parameters"] < 62.3e6
    assert (
        presets["swin_unet_synapse"]["parameters"] == 27_168_900 - 2 * 96 * 4 * 4
    )  # gray input: 1 of 3 patch channels
    assert presets["swin_unetr_btcv"]["weights"] == "pull"  # published: medswin weights pull
    assert presets["swin_unet_synapse"]["weights"] == "import"
    ids = [p["id"] for p in doc["presets"]]
    assert ids.count("demo") == ids.count("demo-x2s") == 1  # shipped models are listed once, as shipped
    assert presets["demo"]["weights"] == presets["demo-x2s"]["weights"] == "shipped"
    assert {a["name"] for a in doc["architectures"]} >= {"swin_unetr", "swin_unet", "attention_swin_unet"}


def test_card_prints_summary_and_json(capsys: pytest.CaptureFixture[str], tiny_card: Path) -> None:
    assert main(["card", "swin_unetr_brats21"]) == 0
    out = capsys.readouterr().out
    assert "region        WT: channel 1 -> label 2" in out and "t2f, t1c, t1n, t2w" in out
    assert main(["card", str(tiny_card), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["config"]["feature_size"] == 12


def test_card_unknown_model_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["card", "swin_unet_synaps"]) == 2
    assert "Did you mean swin_unet_synapse" in capsys.readouterr().err


def test_import_checkpoint_end_to_end(tmp_path: Path, capsys, tiny_card: Path, research_checkpoint) -> None:
    source, reference = research_checkpoint
    out = tmp_path / "btcv.safetensors"
    # the file was made with today's MONAI: its patch merging is the new order
    argv = [
        "import-checkpoint",
        str(source),
        "--card",
        str(tiny_card),
        "-o",
        str(out),
        "--legacy-merging",
        "no",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert (
        f"loaded      {len(reference.state_dict())}" in printed
        and "missing     0" in printed
        and "wrote" in printed
    )
    model, card = load_checkpoint(out)
    assert card.id == "btcv_tiny" and "sha256" in card.provenance["imported_from"]
    assert (
        card.config["legacy_merging"] is False and "--legacy-merging no" in card.provenance["legacy_merging"]
    )
    for key, value in reference.state_dict().items():
        assert torch.equal(model.state_dict()[key], value)
    # no silent overwrite
    assert main(argv) == 2
    assert "--force" in capsys.readouterr().err
    assert main([*argv, "--force"]) == 0


def test_import_checkpoint_reports_a_wrong_preset(tmp_path: Path, capsys, research_checkpoint) -> None:
    source, _ = research_checkpoint
    out = tmp_path / "x.safetensors"
    assert main(["import-checkpoint", str(source), "--preset", "swin_unetr_brats21", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "mismatched" in err and "swinViT.patch_embed.proj.weight" in err
    assert not out.exists()


def test_import_checkpoint_refuses_code_in_pickles(tmp_path: Path, capsys, tiny_card: Path) -> None:
    sentinel = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {sentinel}",))

    evil = tmp_path / "evil.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "x": Exploit()}, evil)
    assert (
        main(
            ["import-checkpoint", str(evil), "--card", str(tiny_card), "-o", str(tmp_path / "o.safetensors")]
        )
        == 2
    )
    assert "refused" in capsys.readouterr().err
    assert not sentinel.exists() and not (tmp_path / "o.safetensors").exists()


def test_import_partial_pretraining(tmp_path: Path, capsys, tiny_card: Path) -> None:
    donor = SwinUNETR(in_channels=1, out_channels=2, feature_size=12)
    ssl = {
        "module." + k.replace("linear1", "fc1").replace("linear2", "fc2"): v
        for k, v in donor.swinViT.state_dict().items()
    }
    source = tmp_path / "model_swinvit.pt"
    torch.save({"state_dict": ssl}, source)
    out = tmp_path / "ssl.safetensors"
    args = [
        "import-checkpoint",
        str(source),
        "--card",
        str(tiny_card),
        "-o",
        str(out),
        "--key-map",
        "swin_unetr_ssl",
    ]
    assert main(args) == 2
    assert "--partial" in capsys.readouterr().err
    assert main([*args, "--partial", "--legacy-merging", "yes"]) == 0
    assert "note: self-supervised weights cover the Swin encoder" in capsys.readouterr().out
    assert out.exists()
