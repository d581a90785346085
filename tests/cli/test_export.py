"""``medswin export``: the shipped demo Swin UNETR written as TorchScript, OpenVINO IR and ONNX, each
loaded by its own runtime and compared with torch on the same window."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from medswin.cli.main import main
from medswin.inference.export import weights_sha256
from medswin.models.resolve import resolve_model


@pytest.fixture(scope="module")
def demo() -> tuple[torch.nn.Module, np.ndarray, np.ndarray]:
    """The demo network, one window (1, 1, 64, 64, 32) in [0, 1] and torch's fp32 logits for it."""
    network, card = resolve_model("demo")
    window = torch.rand((1, len(card.channels), *card.roi_size), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        logits = network(window).numpy()
    return network, window.numpy(), logits


def _export(fmt: str, folder: Path, *extra: str) -> dict:
    assert main(["-q", "export", "demo", "--format", fmt, "-o", str(folder), *extra]) == 0
    card = json.loads((folder / "demo.card.json").read_text())
    assert card["id"] == "demo" and card["export"]["format"] == fmt
    assert card["export"]["inputs"] == {"image": [1, 1, 64, 64, 32]}
    assert card["export"]["outputs"] == {"logits": [1, 6, 64, 64, 32]}
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no staging left behind
    return card


def _agree(logits: np.ndarray, reference: np.ndarray) -> None:
    assert np.abs(logits - reference).max() < 2e-3
    assert (logits.argmax(1) == reference.argmax(1)).mean() >= 0.999


def test_torchscript_export_loads_and_agrees(demo, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    network, window, reference = demo
    card = _export("torchscript", tmp_path)
    assert card["export"]["weights_sha256"] == weights_sha256(network)
    loaded = torch.jit.load(str(tmp_path / card["export"]["file"]))
    with torch.inference_mode():
        _agree(loaded(torch.from_numpy(window)).numpy(), reference)
    # a second export into the same folder needs --overwrite
    assert main(["export", "demo", "--format", "torchscript", "-o", str(tmp_path)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (
        main(["-q", "export", "demo", "--format", "torchscript", "-o", str(tmp_path), "--opset", "17"]) == 2
    )


@pytest.mark.slow
def test_openvino_export_loads_and_agrees(demo, tmp_path: Path) -> None:
    ov = pytest.importorskip("openvino")
    _, window, reference = demo
    card = _export("openvino", tmp_path)
    assert card["export"]["file"] == "demo.xml" and (tmp_path / "demo.bin").is_file()
    compiled = ov.Core().compile_model(str(tmp_path / "demo.xml"), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    _agree(compiled([window])[compiled.outputs[0]], reference)


@pytest.mark.slow
def test_onnx_export_loads_in_onnxruntime_and_agrees(demo, tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    _, window, reference = demo
    card = _export("onnx", tmp_path)
    assert card["export"]["opset"] == 18
    session = ort.InferenceSession(str(tmp_path / "demo.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"]
    _agree(session.run(None, {"image": window})[0], reference)
