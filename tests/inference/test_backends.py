"""Window runners: OpenVINO and ONNX Runtime give torch's results; exports are cached; clear errors.

A small convolutional network (conv, instance norm, leaky ReLU: the decoder's building blocks)
exports in seconds, so these tests run it through every runtime; the shipped Swin UNETR demo model
is compared in ``test_backends_demo.py``. A runtime's tests skip only when its package is absent.
"""

from __future__ import annotations

import builtins
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from medswin.errors import MedSwinError
from medswin.inference import Predictor
from medswin.inference.backends import choose_runtime, compiled_folder
from medswin.inference.export import network_io, weights_sha256
from tests.inference.predictor_nets import clean_phantom, intensity_card

EXPORTED = ("openvino", "onnxruntime")


class ConvNet(torch.nn.Module):
    """Conv -> instance norm -> leaky ReLU -> 1x1 conv to 5 logits, seeded weights."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv = torch.nn.Conv3d(1, 6, 3, padding=1)
        self.norm = torch.nn.InstanceNorm3d(6, affine=True)
        self.head = torch.nn.Conv3d(6, 5, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.nn.functional.leaky_relu(self.norm(self.conv(x)), 0.01)) * 4


def _card():
    return intensity_card(id="convnet_test", roi_size=(16, 16, 16))


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MEDSWIN_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _need(runtime: str) -> None:
    pytest.importorskip(runtime)
    if runtime == "onnxruntime":
        pytest.importorskip("onnxscript")


def test_auto_is_measured_on_cpu_when_a_candidate_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    assert choose_runtime("auto", "cuda") == "torch"
    found = importlib.util.find_spec("openvino") is not None
    assert choose_runtime("auto", "cpu") == ("auto" if found else "torch")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert choose_runtime("auto", "cpu") == "torch"
    assert choose_runtime("onnxruntime", "cpu") == "onnxruntime"
    with pytest.raises(MedSwinError, match="runs on cpu in medswin, not cuda"):
        choose_runtime("openvino", "cuda")
    with pytest.raises(ValueError, match="runtime must be one of"):
        choose_runtime("tensorrt", "cpu")


@pytest.mark.parametrize("runtime", EXPORTED)
def test_missing_package_names_the_extra(runtime: str, monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    real_import = builtins.__import__

    def refuse(name: str, *args: object, **kwargs: object) -> object:
        if name.split(".")[0] == runtime:
            raise ImportError(f"No module named {runtime!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(__import__("sys").modules, runtime, raising=False)
    monkeypatch.setattr(builtins, "__import__", refuse)
    with pytest.raises(MedSwinError, match=rf"pip install 'medswin\[{runtime}\]'"):
        Predictor(ConvNet(), card=_card(), runtime=runtime)
    assert not compiled_folder().exists()  # refused before any export


def test_onnxruntime_refuses_bf16(home: Path) -> None:
    with pytest.raises(MedSwinError, match="fp32 networks only"):
        Predictor(ConvNet(), card=_card(), runtime="onnxruntime", precision="bf16")


@pytest.mark.parametrize("runtime", EXPORTED)
def test_runtime_matches_torch_with_tta_and_a_padded_last_batch(runtime: str, home: Path) -> None:
    _need(runtime)
    image = clean_phantom("LPS", shape=(30, 26, 20)).image
    options = {"card": _card(), "sw_batch_size": 4, "tta": True, "save_probabilities": True}
    reference = Predictor(ConvNet(), runtime="torch", **options).predict(image)
    predictor = Predictor(ConvNet(), runtime=runtime, **options)
    result = predictor.predict(image)
    assert result.windows == reference.windows and result.windows % 4 != 0  # a last, padded batch
    assert result.runtime["name"] == runtime and result.runtime["version"]
    assert result.timings["export"] > 0 and "compile" in result.timings
    np.testing.assert_allclose(result.probabilities.array, reference.probabilities.array, atol=1e-4)
    np.testing.assert_array_equal(result.labels.array, reference.labels.array)
    # the export and compile seconds come with the first prediction only
    assert "export" not in predictor.predict(image).timings


@pytest.mark.parametrize("runtime", EXPORTED)
def test_export_is_cached_per_weights_and_batch(runtime: str, home: Path) -> None:
    _need(runtime)
    card = _card()
    first = Predictor(ConvNet(), card=card, runtime=runtime)
    entries = sorted(compiled_folder().iterdir())
    assert len(entries) == 1 and not any(p.name.endswith(".partial") for p in compiled_folder().iterdir())
    key = json.loads((entries[0] / "key.json").read_text())
    assert key["weights_sha256"] == weights_sha256(ConvNet()) and key[runtime]
    assert key["inputs"] == {"image": [1, 1, 16, 16, 16]}
    stamp = {p.name: p.stat().st_mtime_ns for p in entries[0].iterdir() if p.is_file()}

    again = Predictor(ConvNet(), card=card, runtime=runtime)
    assert again.runner.timings["export"] == 0.0 and first.runner.timings["export"] > 0
    assert {p.name: p.stat().st_mtime_ns for p in entries[0].iterdir() if p.is_file()} == stamp

    Predictor(ConvNet(seed=1), card=card, runtime=runtime)  # other weights
    Predictor(ConvNet(), card=card, runtime=runtime, sw_batch_size=2)  # other batch
    assert len(list(compiled_folder().iterdir())) == 3


def test_network_io_of_volume_and_biplanar_cards() -> None:
    from medswin.models import preset_card

    inputs, outputs = network_io(_card(), 2)
    assert inputs == {"image": (2, 1, 16, 16, 16)} and outputs == {"logits": (2, 5, 16, 16, 16)}
    x2s = preset_card("demo-x2s")
    inputs, outputs = network_io(x2s)
    x, y, z = x2s.roi_size
    assert inputs == {"ap": (1, 1, x, z), "lateral": (1, 1, y, z)}
    assert outputs["logits_ap"] == outputs["logits_lateral"] == (1, x2s.num_classes, x, y, z)


class ConvNet2D(torch.nn.Module):
    """The 2D counterpart of ConvNet, for slice-by-slice models (Swin-Unet's use)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(1, 6, 3, padding=1)
        self.head = torch.nn.Conv2d(6, 5, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(x))) * 4


@pytest.mark.parametrize("runtime", EXPORTED)
def test_two_d_model_runs_slice_batches_through_the_runtime(runtime: str, home: Path) -> None:
    _need(runtime)
    card = intensity_card(
        id="conv2d_test", roi_size=(16, 16), slice_axis=2, spacing=(2.0, 2.0), architecture="swin_unet"
    )
    image = clean_phantom("LPS", shape=(30, 26, 7)).image
    options = {"card": card, "sw_batch_size": 3, "save_probabilities": True}
    reference = Predictor(ConvNet2D(), runtime="torch", **options).predict(image)
    result = Predictor(ConvNet2D(), runtime=runtime, **options).predict(image)
    key = json.loads(next(compiled_folder().glob("*/key.json")).read_text())
    assert key["inputs"] == {"image": [3, 1, 16, 16]}  # slices, not volumes
    np.testing.assert_allclose(result.probabilities.array, reference.probabilities.array, atol=1e-4)
    np.testing.assert_array_equal(result.labels.array, reference.labels.array)


def test_openvino_bf16_without_native_bf16_warns_and_reports_what_it_compiled(
    home: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _need("openvino")
    import medswin.inference.backends as backends

    monkeypatch.setattr(backends, "cpu_has_native_bf16", lambda: False)
    with caplog.at_level("WARNING", logger="medswin.inference.backends"):
        predictor = Predictor(ConvNet(), card=_card(), runtime="openvino", precision="bf16")
    assert "emulated" in caplog.text and "--precision fp32" in caplog.text
    assert predictor.runner.describe()["precision"] in ("bf16", "fp32")  # what OpenVINO compiled
    caplog.clear()
    with caplog.at_level("WARNING", logger="medswin.inference.backends"):
        fp32 = Predictor(ConvNet(), card=_card(), runtime="openvino")
    assert "emulated" not in caplog.text and fp32.runner.describe()["precision"] == "fp32"
