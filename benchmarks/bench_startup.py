"""How long ``medswin`` takes to start: ``--help``, ``info`` and ``evaluate`` as fresh processes.

Each command runs ``--repeats`` times as its own process (the way a user or a batch script pays for
it); the median wall time is printed beside the 0.5 s target and the ``python -c pass`` floor, and
each command's ratio to the target. Also reports whether torch was imported (it must not be for
any of these). Inputs are two tiny NIfTI label files made in a temporary folder.

    python benchmarks/bench_startup.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

TARGET_S = 0.5
PROBE = "import sys, runpy; sys.argv = ['medswin', *sys.argv[1:]]\ntry:\n    runpy.run_module('medswin', run_name='__main__')\nexcept SystemExit:\n    pass\nfinally:\n    print('bench-startup torch=' + str('torch' in sys.modules), file=sys.stderr)"


def _time(argv: list[str], repeats: int) -> tuple[float, bool]:
    times, torch_loaded = [], False
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - start)
        torch_loaded |= "bench-startup torch=True" in done.stderr
    return statistics.median(times), torch_loaded


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        labels = np.zeros((32, 32, 16), np.uint8)
        labels[8:20, 8:20, 4:12] = 1
        for name in ("pred.nii.gz", "ref.nii.gz"):
            nib.save(nib.Nifti1Image(labels, np.diag([0.8, 0.8, 2.5, 1.0])), str(Path(tmp) / name))
        floor, _ = _time([sys.executable, "-c", "pass"], args.repeats)
        commands = {
            "--help": ["--help"],
            "info": ["info", f"{tmp}/pred.nii.gz"],
            "evaluate": [
                "evaluate",
                "--pred",
                f"{tmp}/pred.nii.gz",
                "--gt",
                f"{tmp}/ref.nii.gz",
                "-o",
                f"{tmp}/m.csv",
                "-q",
            ],
        }
        print(f"python -c pass: {floor:.3f} s (median of {args.repeats}); target {TARGET_S} s per command")
        print(f"{'command':<10} {'median s':>9} {'/ target':>9} {'torch':>6}")
        for name, argv in commands.items():
            seconds, torch_loaded = _time([sys.executable, "-c", PROBE, *argv], args.repeats)
            print(
                f"{name:<10} {seconds:>9.3f} {seconds / TARGET_S:>9.2f} {'yes' if torch_loaded else 'no':>6}"
            )


if __name__ == "__main__":
    main()
