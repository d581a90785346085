"""``-m`` resolution: checkpoint path, card path, shipped weights name, preset id."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from medswin.errors import ModelCardError
from medswin.models import preset_card, resolve_model, save_checkpoint
from medswin.models import resolve as resolve_module


@pytest.fixture
def tiny_checkpoint(tmp_path: Path) -> Path:
    card = preset_card("swin_unet_synapse")
    card = card.replace(
        id="synapse_tiny", config={**card.config, "img_size": 64, "embed_dim": 12, "window_size": 4}
    )
    return save_checkpoint(card.create_model(), card, tmp_path / "synapse_tiny.safetensors")


def test_checkpoint_path(tiny_checkpoint: Path) -> None:
    model, card = resolve_model(str(tiny_checkpoint))
    assert card.id == "synapse_tiny" and isinstance(model, torch.nn.Module)
    none, same = resolve_model(tiny_checkpoint, load_weights=False)
    assert none is None and same == card


def test_card_path_and_preset(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    path.write_text(preset_card("swin_unetr_btcv").to_json())
    model, card = resolve_model(path)
    assert model is None and card.id == "swin_unetr_btcv"
    model, card = resolve_model("swin_unetr_brats21")
    assert model is None and card.num_classes == 3


def test_shipped_weights_win_over_presets(monkeypatch: pytest.MonkeyPatch, tiny_checkpoint: Path) -> None:
    monkeypatch.setattr(
        resolve_module, "shipped_weights", lambda name: tiny_checkpoint if name == "demo" else None
    )
    model, card = resolve_model("demo")
    assert model is not None and card.id == "synapse_tiny"


def test_shipped_weights_folder_is_looked_up() -> None:
    found = resolve_module.shipped_weights("demo")
    expected = Path(resolve_module.__file__).parent / "weights" / "demo.safetensors"
    assert found == (expected if expected.is_file() else None)
    assert resolve_module.shipped_weights("../card") is None


def test_unknown_model_suggests() -> None:
    with pytest.raises(ModelCardError, match="Did you mean swin_unetr_btcv"):
        resolve_model("swin_unetr_btc")


def test_a_folder_named_like_a_model_does_not_hide_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_checkpoint: Path
) -> None:
    """``python -m medswin.demo --out demo`` leaves a ``demo`` folder: ``-m demo`` still means the model."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo").mkdir()
    (tmp_path / "swin_unetr_btcv").mkdir()
    (tmp_path / "swin_unetr_btcv" / "notes.txt").write_text("not a checkpoint")
    assert resolve_model("swin_unetr_btcv", load_weights=False)[1].id == "swin_unetr_btcv"
    if resolve_module.shipped_weights("demo") is not None:
        assert (
            resolve_model("demo", load_weights=False)[1]
            == resolve_model(resolve_module.shipped_weights("demo"), load_weights=False)[1]
        )
    with pytest.raises(Exception, match="demo"):  # written as a path, the folder is what is meant
        resolve_model("./demo", load_weights=False)
    # a checkpoint file under a model's name: a real ambiguity, both named
    (tmp_path / "swin_unetr_btcv.bin").write_bytes(b"")
    (tmp_path / "swin_unetr_btcv").rename(tmp_path / "old")
    (tmp_path / "swin_unetr_btcv").write_bytes(tiny_checkpoint.read_bytes())
    with pytest.raises(ModelCardError, match=r"ambiguous: both a known model and the file .*swin_unetr_btcv"):
        resolve_model("swin_unetr_btcv", load_weights=False)
    assert resolve_model("./swin_unetr_btcv", load_weights=False)[1].id == "synapse_tiny"
