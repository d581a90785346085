"""``benchmarks/bench_runtimes.py --end-to-end`` runs the public predict path and prints one row per run.

Tiny settings (feature size 12, 64x32x32 windows, a 64x64x24 CT), torch only, so that it stays a smoke
test of the table: torch fp32 is its own reference (ratio 1.00, every label equal); bf16 gets a row.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_runtimes.py"


def test_end_to_end_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("bench_runtimes", SCRIPT)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    tiny = ["--feature-size", "12", "--roi", "64", "32", "32", "--ct-shape", "64", "64", "24"]
    runs = ["--runtimes", "torch", "default", "--precisions", "fp32", "bf16", "--threads", "1"]
    argv = ["--end-to-end", *tiny, *runs, "--workdir", str(tmp_path)]
    assert bench.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("end to end: read_image + Predictor.predict of a 64x64x24 CT")
    defaults = [line for line in lines[2:] if "default, case" in line]
    rows = {
        (cells[0], cells[2]): cells for cells in (line.split() for line in lines[2:] if line not in defaults)
    }
    assert set(rows) == {("torch", "fp32"), ("torch", "bf16")}, lines
    fp32, bf16 = rows[("torch", "fp32")], rows[("torch", "bf16")]
    assert fp32[4] == "1.00x" and fp32[-1] == "100.0000%"
    assert float(bf16[4].rstrip("x")) > 0 and bf16[-1].endswith("%")
    assert int(fp32[8]) == int(bf16[8]) > 1  # windows: the same grid for both, more than one
    assert (tmp_path / "ct_64x64x24.nii.gz").is_file()  # the CT every child read
    # medswin predict's defaults on a fresh cache, two cases, each with what auto chose and why
    assert [line.split(":")[0] for line in defaults[:2]] == ["default, case 1", "default, case 2"]
    assert defaults[2].strip().startswith("default, case 1: auto: torch;")  # 2 windows cannot repay an export
