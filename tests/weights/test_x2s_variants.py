"""Swin-X2S files by dataset and size: ``medswin weights import FILE --as swin_x2s_<size>_<dataset>``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from medswin.cli.main import main
from medswin.models import create_model, load_checkpoint


def test_a_tiny_file_is_named_as_tiny_and_imports_with_the_tiny_card(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch.manual_seed(0)
    tiny = create_model("swin_x2s_tiny", img_size=[128, 128, 160], in_channels=1, out_channels=4)
    official = {  # the official trainer's layout: timm MLP names, numpy best_acc
        k.replace(".mlp.linear1.", ".mlp.fc1.").replace(".mlp.linear2.", ".mlp.fc2."): v
        for k, v in tiny.state_dict().items()
    }
    source = tmp_path / "pelvic_swinx2stiny.pt"
    torch.save({"epoch": 99, "best_acc": np.float64(0.9), "state_dict": official}, source)

    assert main(["weights", "import", str(source), "--as", "swin_x2s_base_ctpelvic1k"]) == 2
    err = capsys.readouterr().err
    assert "mismatched" in err and "the file holds a Swin-X2S-Tiny (feature_size 32)" in err
    assert "swin_x2s_tiny_<dataset>" in err

    assert main(["weights", "import", str(source), "--as", "swin_x2s_tiny_ctpelvic1k"]) == 0
    path = Path(capsys.readouterr().out.strip().split(": ", 1)[1])
    model, card = load_checkpoint(path)
    assert card.id == "swin_x2s_tiny_ctpelvic1k" and card.architecture == "swin_x2s_tiny"
    assert card.labels == {0: "background", 1: "sacrum", 2: "hip_left", 3: "hip_right"}
    for key, value in tiny.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


def test_every_size_has_a_card_for_every_dataset(capsys: pytest.CaptureFixture[str]) -> None:
    for size in ("tiny", "small", "large"):
        assert main(["card", f"swin_x2s_{size}_verse19", "--json"]) == 0
        assert f'"architecture": "swin_x2s_{size}"' in capsys.readouterr().out
    assert main(["card", "swin_x2s_huge_verse19"]) == 2
