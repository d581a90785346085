"""Per-window time of one Swin UNETR window in every runtime x precision available, in one run.

Each (runtime, precision) runs in its own subprocess (so its peak RSS is its own) through the same
window call the :class:`~medswin.inference.Predictor` makes (``Predictor._forward``: allocator
tuned, SDPA attention for torch, the cached export for OpenVINO / ONNX Runtime). One warm-up call,
then the best of ``--repeats`` calls on the same window; times are printed as ratios against torch
fp32 measured in the same run. The logits of each are compared with torch fp32's (max |d| and the
share of voxels whose argmax agrees; random weights make near-ties common, so this shows numerical
agreement, not accuracy).

The network: the BTCV card (14 classes) at ``--feature-size`` with ``--roi`` windows, seeded random
weights (timing does not depend on their values). Exports are cached in ``--workdir`` (as
``MEDSWIN_HOME``), so a second run measures compile and load only.

Run: ``python benchmarks/bench_runtimes.py [--feature-size 48] [--roi 96 96 96] [--repeats 2]``.
bf16 is measured only where the CPU has AVX-512 BF16/AMX (elsewhere it is emulated and slow) unless
``--precisions`` names it. Results on this project's machines are in README.md ("Performance").
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def peak_rss_mb() -> float:
    """This process's peak resident memory (MiB), from ``VmHWM`` (own address space only)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bench_card(feature_size: int, roi: list[int]) -> Any:
    from medswin.models import preset_card

    card = preset_card("swin_unetr_btcv")
    return card.replace(
        id=f"bench_fs{feature_size}",
        config={**card.config, "feature_size": feature_size, "legacy_merging": False},
        roi_size=tuple(roi),
    )


def child(args: argparse.Namespace) -> dict[str, Any]:
    """Time one (runtime, precision) in this process; write its logits to ``--logits``."""
    import torch

    from medswin.inference import Predictor

    card = bench_card(args.feature_size, args.roi)
    torch.manual_seed(0)
    network = card.create_model().eval()
    start = time.perf_counter()
    predictor = Predictor(
        network, card=card, runtime=args.runtime, precision=args.precision, threads=args.threads
    )
    setup = time.perf_counter() - start
    window = torch.rand((1, 1, *card.roi_size), generator=torch.Generator().manual_seed(1))
    times = []
    with torch.inference_mode(), predictor._attention_mode():
        for _ in range(args.repeats + 1):  # the first call is the warm-up
            tick = time.perf_counter()
            logits = predictor._forward(window)
            times.append(time.perf_counter() - tick)
    np.save(args.logits, logits.numpy())
    return {
        "best_s": min(times[1:]),
        "warmup_s": times[0],
        "setup_s": setup,
        **{f"{k}_s": v for k, v in predictor._runtime_timings.items()},
        "peak_rss_mb": peak_rss_mb(),
        "version": predictor.runner.describe()["version"],
    }


def available_runtimes() -> list[str]:
    import importlib.util

    return ["torch"] + [r for r in ("openvino", "onnxruntime") if importlib.util.find_spec(r) is not None]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--feature-size", type=int, default=48)
    parser.add_argument("--roi", type=int, nargs=3, default=[96, 96, 96])
    parser.add_argument("--repeats", type=int, default=2, help="timed calls after the warm-up (best is kept)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--runtimes", nargs="+", default=None, help="default: torch and every installed runtime"
    )
    parser.add_argument(
        "--precisions", nargs="+", default=None, help="default: fp32, plus bf16 on native-bf16 CPUs"
    )
    parser.add_argument(
        "--workdir", type=Path, default=None, help="export cache (default: a temporary folder)"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--runtime", default="torch", help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)
    parser.add_argument("--logits", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return 0

    from medswin.inference.runtime import cpu_has_native_bf16

    precisions = args.precisions or (["fp32", "bf16"] if cpu_has_native_bf16() else ["fp32"])
    runtimes = args.runtimes or available_runtimes()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_runtimes_"))
    workdir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "MEDSWIN_HOME": str(workdir)}
    runs: dict[tuple[str, str], dict[str, Any]] = {}
    for runtime in runtimes:
        for precision in precisions:
            if runtime == "onnxruntime" and precision != "fp32":
                continue
            logits = workdir / f"logits_{runtime}_{precision}.npy"
            command = [sys.executable, __file__, "--child", "--runtime", runtime, "--precision", precision]
            command += ["--feature-size", str(args.feature_size), "--roi", *map(str, args.roi)]
            command += ["--repeats", str(args.repeats), "--logits", str(logits)]
            if args.threads:
                command += ["--threads", str(args.threads)]
            done = subprocess.run(command, capture_output=True, text=True, env=env)
            if done.returncode != 0:
                print(f"{runtime} {precision}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
                continue
            runs[(runtime, precision)] = {
                **json.loads(done.stdout.strip().splitlines()[-1]),
                "logits": logits,
            }
            print(
                f"done {runtime} {precision}: {runs[(runtime, precision)]['best_s']:.2f} s", file=sys.stderr
            )
    base = runs.get(("torch", "fp32"))
    if base is None:
        print("torch fp32 did not run; no ratios", file=sys.stderr)
        return 1
    reference = np.load(base["logits"])
    roi = "x".join(map(str, args.roi))
    print(
        f"one SwinUNETR window, feature size {args.feature_size}, {roi}, 14 classes; best of {args.repeats}"
    )
    print(
        f"{'runtime':<20} {'prec':<5} {'window s':>9} {'vs torch fp32':>14} {'export s':>9} {'compile s':>10} "
        f"{'peak RSS MB':>12} {'max |d|':>9} {'argmax agree':>13}"
    )
    for (runtime, precision), run in runs.items():
        logits = np.load(run["logits"])
        agree = float(np.mean(logits.argmax(1) == reference.argmax(1)))
        print(
            f"{runtime + ' ' + run['version']:<20} {precision:<5} {run['best_s']:>9.2f} "
            f"{base['best_s'] / run['best_s']:>13.2f}x {run.get('export_s', 0.0):>9.1f} "
            f"{run.get('compile_s', 0.0):>10.1f} {run['peak_rss_mb']:>12.0f} "
            f"{float(np.abs(logits - reference).max()):>9.2e} {agree:>13.4%}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
