"""Two CPU processes under torchrun (DDP over gloo) train the tiny task to one checkpoint."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from medswin.models.checkpoints import load_checkpoint


@pytest.mark.slow
def test_torchrun_two_cpu_processes(
    phantom_data: Path, tiny_setup: tuple[Path, Path], tmp_path: Path
) -> None:
    _, pipeline = tiny_setup
    output = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "medswin", "-q", "train", "--pipeline", str(pipeline), "--data-root", str(phantom_data),
        "--output", str(output), "--epochs", "1",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    with (output / "metrics.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    # 3 training cases over 2 ranks: each rank takes 2 (DistributedSampler pads), so 2 steps, not 3
    assert [(r["epoch"], r["global_step"], r["world_size"]) for r in rows] == [("1", "2", "2")]
    model, card = load_checkpoint(output / "best.safetensors")
    assert "2 process(es)" in card.provenance["training"]
    assert card.provenance["validation_dice"].endswith("over 1 validation case(s)")
    assert not any(p.name.endswith(".tmp") for p in output.iterdir())
