"""``--device auto`` and ``--precision auto`` (the defaults): chosen from the machine, said and recorded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from medswin.data.phantom import make_ct_phantom
from medswin.inference import Predictor, X2SPredictor
from medswin.inference import runtime as runtime_module
from medswin.inference.runtime import resolve_device, resolve_precision
from medswin.io import write_image


def test_defaults_choose_from_this_machine_and_say_why(monkeypatch: pytest.MonkeyPatch) -> None:
    for native in (False, True):
        monkeypatch.setattr(runtime_module, "cpu_has_native_bf16", lambda native=native: native)
        predictor = Predictor("demo")
        assert predictor.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
        if predictor.device.type == "cpu":
            assert predictor.precision == ("bf16" if native else "fp32")
            assert "no CUDA GPU" in predictor.choices["device"]["why"]
            assert ("natively" if native else "emulated") in predictor.choices["precision"]["why"]
    x2s = X2SPredictor("demo-x2s")
    assert x2s.choices["device"]["value"] == str(x2s.device) and x2s.precision in ("fp32", "bf16", "fp16")


def test_explicit_settings_win_and_onnxruntime_stays_fp32(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime_module, "cpu_has_native_bf16", lambda: True)
    assert resolve_device("cpu") == ("cpu", "asked for")
    assert resolve_precision("fp32", "cpu", "torch") == ("fp32", "asked for")
    assert resolve_precision("auto", "cpu", "onnxruntime")[0] == "fp32"
    assert resolve_precision("auto", "cpu", "openvino")[0] == "bf16"
    with pytest.raises(ValueError, match="auto, fp32, bf16, fp16"):
        resolve_precision("fp64", "cpu", "torch")


def test_a_gpu_is_chosen_when_torch_sees_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CUDA branch, with torch's own answers replaced (no GPU on the test machines)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "NVIDIA H100")
    assert resolve_device("auto") == ("cuda", "auto: torch sees a CUDA GPU (NVIDIA H100)")
    for supported, expected in ((True, "bf16"), (False, "fp16")):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda supported=supported: supported)
        assert resolve_precision("auto", "cuda", "torch")[0] == expected


@pytest.mark.slow
def test_auto_bf16_keeps_the_demo_models_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``auto`` picks on a CPU with native bf16 changes at most bf16's near-tie share of labels (0.2%).

    Measured on the demo model: 0.005% of the voxels of the demo phantom, 0.16% of this smaller one,
    whose organ boundaries are a larger share of its voxels."""
    image = make_ct_phantom(shape=(64, 64, 40), seed=21).image
    reference = Predictor("demo", precision="fp32").predict(image).labels.array
    monkeypatch.setattr(runtime_module, "cpu_has_native_bf16", lambda: True)
    chosen = Predictor("demo", device="cpu")
    assert chosen.precision == "bf16"
    labels = chosen.predict(image).labels.array
    assert np.mean(labels == reference) >= 0.998


@pytest.mark.slow
def test_predict_records_and_logs_what_auto_chose(tmp_path: Path) -> None:
    source = tmp_path / "ct.nii.gz"
    write_image(make_ct_phantom(shape=(48, 48, 24), seed=2).image, source)
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "medswin", "predict", "-i", str(source), "-o", str(out), "-m", "demo"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    record = json.loads((out / "ct.json").read_text())
    choices = record["runtime"]["choices"]
    assert choices["device"]["value"] == record["runtime"]["device"]
    assert choices["precision"]["why"].startswith("auto:")
    assert record["settings"]["precision"] == choices["precision"]["value"]
    assert f"running on {choices['device']['value']}" in done.stderr


def test_a_volume_that_does_not_fit_the_gpu_stays_in_pinned_host_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The GPU path keeps the model-grid volume on the GPU when it fits (torch's answers replaced: no GPU here)."""
    from medswin.inference.predictor import stitch_device
    from medswin.models import preset_card

    card = preset_card("swin_unetr_btcv")  # 14 classes, 96³ windows
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (70 * 2**30, 80 * 2**30))
    assert stitch_device(cuda, (1, 267, 267, 150), card, full_outputs=False) == cuda  # a BTCV CT
    assert stitch_device(cuda, (1, 267, 267, 750), card, full_outputs=True) == cuda
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (2 * 2**30, 8 * 2**30))
    assert stitch_device(cuda, (1, 267, 267, 150), card, full_outputs=False) == cuda  # ~0.4 GB
    # 14 float32 probabilities per voxel of a 600-slice CT's model grid: 3 GB, more than half of 2 GB
    assert stitch_device(cuda, (1, 267, 267, 750), card, full_outputs=True) == cpu
    assert stitch_device(cpu, (1, 267, 267, 750), card, full_outputs=True) == cpu
