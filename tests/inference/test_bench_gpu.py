"""``benchmarks/bench_gpu.py`` runs its flows with the inference path's imports only.

No GPU here: ``--device cpu`` with a tiny network and CT runs the same code (MONAI's flow, medswin's
Predictor), while the packages the GPU image lacks and the benchmark must not need are made
unimportable. The wheel selection is checked on names of the real wheels.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_gpu.py"
#: installed here, absent on the GPU image, and off the inference path.
NOT_ON_THE_GPU_IMAGE = (
    "yaml",
    "rich",
    "pydicom",
    "highdicom",
    "matplotlib",
    "skimage",
    "PIL",
    "openvino",
    "onnxruntime",
)

RUN_BLOCKED = """
import importlib.abc, runpy, sys
blocked = set(sys.argv[1].split(","))
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in blocked:
            raise ImportError(f"{name} is not on the GPU image")
sys.meta_path.insert(0, Block())
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _bench():
    spec = importlib.util.spec_from_file_location("bench_gpu", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_flows_run_without_packages_off_the_inference_path(tmp_path: Path) -> None:
    tiny = [
        "--device",
        "cpu",
        "--ct-shape",
        "64",
        "64",
        "32",
        "--feature-size",
        "12",
        "--roi",
        "64",
        "64",
        "32",
    ]
    out = tmp_path / "result.json"
    command = [sys.executable, "-c", RUN_BLOCKED, ",".join(NOT_ON_THE_GPU_IMAGE), str(SCRIPT), *tiny]
    done = subprocess.run(
        [*command, "--precisions", "fp32", "--sw-batch-size", "1", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    flows = result["flows"]
    assert set(flows) == {"MONAI, device=cuda", "MONAI, sw_device=cuda, device=cpu", "medswin fp32"}
    assert flows["MONAI, device=cuda"]["labels_equal"] == 1.0  # the reference
    # MONAI's two buffer placements compute the same thing
    assert flows["MONAI, sw_device=cuda, device=cpu"]["labels_equal"] == 1.0
    assert 0.5 < flows["medswin fp32"]["labels_equal"] <= 1.0 and flows["medswin fp32"]["seconds"] > 0
    assert "medswin fp32" in done.stdout and "vs MONAI" in done.stdout


def test_wheels_are_chosen_for_the_running_python(monkeypatch: pytest.MonkeyPatch) -> None:
    bench = _bench()
    monkeypatch.setattr(bench.sysconfig, "get_platform", lambda: "linux-x86_64")
    monkeypatch.setattr(bench.sys, "version_info", (3, 12, 4))
    fits = bench._fits_this_python
    assert fits("monai-1.6.1-py3-none-any.whl")
    assert fits("rpds_py-0.30.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
    assert not fits("rpds_py-0.30.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
    assert fits("simpleitk-2.5.3-cp311-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
    assert not fits("simpleitk-2.5.3-cp311-abi3-manylinux_2_17_aarch64.manylinux2014_aarch64.whl")
    monkeypatch.setattr(bench.sys, "version_info", (3, 10, 12))
    assert not fits("simpleitk-2.5.3-cp311-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
