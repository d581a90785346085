"""Swin UNETR speed in every runtime x precision available, in one run: per window, or end to end.

Each (runtime, precision) runs in its own subprocess (so its peak RSS is its own), and times are
printed as ratios against torch fp32 measured in the same run. Two modes:

* per window (default): the same window call the :class:`~medswin.inference.Predictor` makes
  (``Predictor._forward``: allocator tuned, SDPA attention for torch, the cached export for
  OpenVINO / ONNX Runtime). One warm-up call, then the best of ``--repeats`` calls on the same
  window. The logits of each are compared with torch fp32's (max |d| and the share of voxels whose
  argmax agrees; random weights make near-ties common, so this shows numerical agreement, not
  accuracy).
* ``--end-to-end``: the public path of ``medswin predict`` for one case: ``read_image`` of a
  made-up CT (:func:`medswin.data.phantom.make_ct_phantom`, ``--ct-shape`` voxels, default
  512x512x120, 0.78x0.78x2.5 mm, DICOM-style LPS array order, written once as int16 NIfTI in
  ``--workdir`` and read by every child), then ``Predictor.predict``: preprocessing onto the card's
  orientation and spacing, sliding windows with the card's overlap and Gaussian blending, labels
  resampled onto the input grid. Reported: wall time of read + predict (best of ``--repeats``,
  default 1; a single run includes the runtime's first-call costs, as one case of ``medswin
  predict`` does), its phases, windows and seconds per window (comparable with the per-window
  table), the export and compile seconds of building the Predictor (which the wall time excludes)
  and whether the export came from the cache, peak RSS of the whole child and of the prediction
  alone (``VmHWM`` reset after the Predictor is built, so an export's transient does not count),
  and label agreement with torch fp32 (share of input-grid voxels with equal labels). Its last
  rows, ``default``, are ``medswin predict``'s defaults (``--runtime auto --precision auto``) on an
  empty weights cache, predicting the CT twice: case 1 measures and (when the case repays it) exports,
  case 2 runs what was chosen; each row says what ran and why, against the torch fp32 row.

The network, the same in both modes: the BTCV card (14 classes, 1.5x1.5x2 mm, overlap 0.5) at
``--feature-size`` with ``--roi`` windows, ``legacy_merging`` off, seeded random weights (timing
does not depend on their values). Exports are cached in ``--workdir`` (as ``MEDSWIN_HOME``): a run
with the ``--workdir`` of an earlier one (of either mode, same feature size and roi) measures
compile and load only.

Run: ``python benchmarks/bench_runtimes.py [--feature-size 48] [--roi 96 96 96] [--repeats 2]``, and
``python benchmarks/bench_runtimes.py --end-to-end [--ct-shape 512 512 120]``. The full-size end to
end run is 75 windows per runtime; ``--runtimes`` picks runtimes and ``--child-timeout`` stops one
that runs too long (its row says so). bf16 is measured only where the CPU has AVX-512 BF16/AMX
(elsewhere it is emulated and slow) unless ``--precisions`` names it. Per-window results on this
project's machines, and the command for the end-to-end table, are in README.md ("Performance").
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

#: the made-up CT of the end-to-end mode: thin-slice abdominal geometry, the CT of bench_predict.py.
CT_SPACING = (0.78, 0.78, 2.5)
CT_SEED = 7


def peak_rss_mb() -> float:
    """This process's peak resident memory (MiB), from ``VmHWM`` (own address space only)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak_rss() -> bool:
    """Set ``VmHWM`` back to the current RSS (Linux ``clear_refs``), so a later peak is one step's own."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def bench_card(feature_size: int, roi: list[int]) -> Any:
    """The BTCV card at ``feature_size`` with ``roi`` windows: what both modes time."""
    from medswin.models import preset_card

    card = preset_card("swin_unetr_btcv")
    return card.replace(
        id=f"bench_fs{feature_size}",
        config={**card.config, "feature_size": feature_size, "legacy_merging": False},
        roi_size=tuple(roi),
    )


def make_predictor(args: argparse.Namespace) -> tuple[Any, float]:
    """The Predictor for this child's (runtime, precision), seeded weights; and seconds to build it."""
    import torch

    from medswin.inference import Predictor

    card = bench_card(args.feature_size, args.roi)
    torch.manual_seed(0)
    network = card.create_model().eval()
    start = time.perf_counter()
    predictor = Predictor(
        network, card=card, runtime=args.runtime, precision=args.precision, threads=args.threads
    )
    return predictor, time.perf_counter() - start


def child_window(args: argparse.Namespace) -> dict[str, Any]:
    """Time one window in this process's (runtime, precision); write its logits to ``--output``."""
    import torch

    predictor, setup = make_predictor(args)
    window = torch.rand((1, 1, *predictor.card.roi_size), generator=torch.Generator().manual_seed(1))
    times = []
    with torch.inference_mode(), predictor._attention_mode():
        for _ in range(args.repeats + 1):  # the first call is the warm-up
            tick = time.perf_counter()
            logits = predictor._forward(window)
            times.append(time.perf_counter() - tick)
    np.save(args.output, logits.numpy())
    return {
        "best_s": min(times[1:]),
        "warmup_s": times[0],
        "setup_s": setup,
        **{f"{k}_s": v for k, v in predictor.runner.pop_timings().items()},
        "peak_rss_mb": peak_rss_mb(),
        "version": predictor.runner.describe()["version"],
    }


def child_end_to_end(args: argparse.Namespace) -> dict[str, Any]:
    """Read ``--ct`` and predict it in this process's (runtime, precision); write the labels to ``--output``.

    Every case is kept in ``cases`` (the default path's first case pays its export, the second not)."""
    from medswin.io import read_image

    predictor, setup = make_predictor(args)
    setup_rss = peak_rss_mb()
    reset = reset_peak_rss()
    export = {f"{k}_s": v for k, v in predictor.runner.pop_timings().items()}  # built before the first case
    cases: list[dict[str, Any]] = []
    for _ in range(args.repeats):
        tick = time.perf_counter()
        image = read_image(args.ct)
        read_s = time.perf_counter() - tick
        prediction = predictor.predict(image)
        wall = time.perf_counter() - tick
        runtime = prediction.runtime or {}
        cases.append(
            {
                "wall_s": wall,
                "read_s": read_s,
                **{f"{k}_s": v for k, v in prediction.timings.items()},
                "ran": f"{runtime.get('name', '')} {runtime.get('precision', '')}".strip(),
                "why": runtime.get("choices", {}).get("runtime", {}).get("why", ""),
            }
        )
        del image
    np.save(args.output, np.asarray(prediction.labels.array))
    best = min(cases, key=lambda case: case["wall_s"])
    return {
        **best,
        **export,
        "cases": cases,
        "setup_s": setup,
        "windows": prediction.windows,
        "setup_rss_mb": setup_rss,
        "predict_rss_mb": peak_rss_mb() if reset else float("nan"),
        "peak_rss_mb": max(setup_rss, peak_rss_mb()),
        "version": prediction.runtime["version"] if prediction.runtime else "",
    }


def make_ct(workdir: Path, shape: list[int]) -> Path:
    """The end-to-end CT (int16 NIfTI, LPS array order) in ``workdir``; made once, reused when present."""
    from medswin.data.phantom import make_ct_phantom
    from medswin.io import write_image

    path = workdir / f"ct_{'x'.join(map(str, shape))}.nii.gz"
    if not path.exists():
        case = make_ct_phantom(shape=tuple(shape), spacing=CT_SPACING, orientation="LPS", seed=CT_SEED)
        write_image(case.image.with_array(np.round(case.image.array)), path, dtype=np.int16)
    return path


#: the pseudo-runtime of ``--end-to-end``: ``medswin predict``'s defaults (``--runtime auto``,
#: ``--precision auto``) on a fresh weights cache, two cases: the first pays the export, the second not.
DEFAULT = "default"


def available_runtimes(end_to_end: bool) -> list[str]:
    import importlib.util

    installed = [r for r in ("openvino", "onnxruntime") if importlib.util.find_spec(r) is not None]
    return ["torch", *installed, *([DEFAULT] if end_to_end else [])]


def run_children(
    args: argparse.Namespace, runtimes: list[str], precisions: list[str], workdir: Path, ct: Path | None
) -> tuple[dict[tuple[str, str], dict[str, Any]], dict[tuple[str, str], str]]:
    """Run every (runtime, precision) in its own subprocess: their results, and why the others have none."""
    env = {**os.environ, "MEDSWIN_HOME": str(workdir)}
    runs: dict[tuple[str, str], dict[str, Any]] = {}
    failed: dict[tuple[str, str], str] = {}
    mode = "e2e" if ct is not None else "window"
    for runtime in runtimes:
        for precision in precisions if runtime != DEFAULT else ["auto"]:
            if runtime == "onnxruntime" and precision != "fp32":
                continue
            output = workdir / f"{mode}_{runtime}_{precision}.npy"
            child_env = env
            repeats = args.repeats
            if runtime == DEFAULT:  # a new user's machine: nothing exported or measured yet, two cases
                child_env = {**env, "MEDSWIN_HOME": tempfile.mkdtemp(prefix="default_home_", dir=workdir)}
                repeats = max(2, args.repeats)
            command = [sys.executable, __file__, "--child", "--precision", precision]
            command += ["--runtime", "auto" if runtime == DEFAULT else runtime]
            command += ["--feature-size", str(args.feature_size), "--roi", *map(str, args.roi)]
            command += ["--repeats", str(repeats), "--output", str(output)]
            if args.threads:
                command += ["--threads", str(args.threads)]
            if ct is not None:
                command += ["--end-to-end", "--ct", str(ct)]
            try:
                done = subprocess.run(
                    command, capture_output=True, text=True, env=child_env, timeout=args.child_timeout
                )
            except subprocess.TimeoutExpired:  # subprocess.run has killed the child
                failed[(runtime, precision)] = f"stopped after {args.child_timeout:.0f} s (--child-timeout)"
                print(f"{runtime} {precision}: {failed[(runtime, precision)]}", file=sys.stderr)
                continue
            if done.returncode != 0:
                failed[(runtime, precision)] = f"failed (exit {done.returncode})"
                print(f"{runtime} {precision}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
                continue
            run = json.loads(done.stdout.strip().splitlines()[-1])
            runs[(runtime, precision)] = {**run, "output": output}
            seconds = run["wall_s" if ct is not None else "best_s"]
            print(f"done {runtime} {precision}: {seconds:.2f} s", file=sys.stderr)
    return runs, failed


def print_failed(failed: dict[tuple[str, str], str]) -> None:
    """A row for each (runtime, precision) that has no numbers, saying why."""
    for (runtime, precision), why in failed.items():
        print(f"{runtime:<20} {precision:<5} {why}")


def print_window_table(
    args: argparse.Namespace, runs: dict[tuple[str, str], dict[str, Any]], failed: dict[tuple[str, str], str]
) -> None:
    base = runs[("torch", "fp32")]
    reference = np.load(base["output"])
    roi = "x".join(map(str, args.roi))
    print(
        f"one SwinUNETR window, feature size {args.feature_size}, {roi}, 14 classes; best of {args.repeats}"
    )
    print(
        f"{'runtime':<20} {'prec':<5} {'window s':>9} {'vs torch fp32':>14} {'export s':>9} {'compile s':>10} "
        f"{'peak RSS MB':>12} {'max |d|':>9} {'argmax agree':>13}"
    )
    for (runtime, precision), run in runs.items():
        logits = np.load(run["output"])
        agree = float(np.mean(logits.argmax(1) == reference.argmax(1)))
        print(
            f"{runtime + ' ' + run['version']:<20} {precision:<5} {run['best_s']:>9.2f} "
            f"{base['best_s'] / run['best_s']:>13.2f}x {run.get('export_s', 0.0):>9.1f} "
            f"{run.get('compile_s', 0.0):>10.1f} {run['peak_rss_mb']:>12.0f} "
            f"{float(np.abs(logits - reference).max()):>9.2e} {agree:>13.4%}"
        )
    print_failed(failed)


def print_end_to_end_table(
    args: argparse.Namespace, runs: dict[tuple[str, str], dict[str, Any]], failed: dict[tuple[str, str], str]
) -> None:
    base = runs[("torch", "fp32")]
    reference = np.load(base["output"])
    shape = "x".join(map(str, args.ct_shape))
    spacing = "x".join(f"{s:g}" for s in CT_SPACING)
    roi = "x".join(map(str, args.roi))
    print(
        f"end to end: read_image + Predictor.predict of a {shape} CT ({spacing} mm, LPS, int16 NIfTI); "
        f"BTCV card, SwinUNETR feature size {args.feature_size}, 14 classes, {roi} windows, overlap 0.5, "
        f"gaussian; best of {args.repeats}"
    )
    print(
        f"{'runtime':<20} {'prec':<5} {'wall s':>8} {'vs torch fp32':>14} {'read s':>7} {'prep s':>7} "
        f"{'infer s':>8} {'windows':>8} {'s/window':>9} {'resamp s':>9} {'export s':>9} {'compile s':>10} "
        f"{'cache':>5} {'peak RSS MB':>12} {'predict RSS MB':>15} {'labels agree':>13}"
    )
    for (runtime, precision), run in runs.items():
        labels = np.load(run["output"])
        agree = float(np.mean(labels == reference)) if labels.shape == reference.shape else float("nan")
        rows = [(f"{runtime} {run['version']}", precision, run)]
        if runtime == DEFAULT:  # one row per case: the first pays the export, the second runs what was chosen
            first, *later = run["cases"]
            rows = [(f"default, case 1: {first['ran']}", "auto", {**run, **first})]
            rows += [
                (f"default, case {i}: {case['ran']}", "auto", {**run, **case})
                for i, case in enumerate(later, 2)
            ]
        for name, shown, row in rows:
            exported = row.get("export_s", 0.0)
            cache = (
                "-"
                if name.startswith("torch") or (runtime == DEFAULT and not exported)
                else ("warm" if not exported else "cold")
            )
            print(
                f"{name:<20} {shown:<5} {row['wall_s']:>8.2f} "
                f"{base['wall_s'] / row['wall_s']:>13.2f}x {row['read_s']:>7.2f} {row['preprocess_s']:>7.2f} "
                f"{row['inference_s']:>8.2f} {row['windows']:>8d} {row['inference_s'] / row['windows']:>9.2f} "
                f"{row['resample_s']:>9.2f} {exported:>9.1f} {row.get('compile_s', 0.0):>10.1f} "
                f"{cache:>5} {row['peak_rss_mb']:>12.0f} {row['predict_rss_mb']:>15.0f} {agree:>13.4%}"
            )
        if runtime == DEFAULT:
            for i, case in enumerate(run["cases"], 1):
                print(f"  default, case {i}: {case['why']}")
    print_failed(failed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--feature-size", type=int, default=48)
    parser.add_argument("--roi", type=int, nargs=3, default=[96, 96, 96])
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed calls, the best is kept (default: 2 windows after a warm-up; 1 end-to-end prediction)",
    )
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--runtimes",
        nargs="+",
        default=None,
        help="default: torch and every installed runtime, and with --end-to-end 'default' (medswin "
        "predict's defaults on a fresh cache, two cases)",
    )
    parser.add_argument(
        "--precisions", nargs="+", default=None, help="default: fp32, plus bf16 on native-bf16 CPUs"
    )
    parser.add_argument(
        "--workdir", type=Path, default=None, help="export cache and CT (default: a temporary folder)"
    )
    parser.add_argument(
        "--end-to-end", action="store_true", help="time read + Predictor.predict of a made-up CT instead"
    )
    parser.add_argument(
        "--ct-shape", type=int, nargs=3, default=[512, 512, 120], help="end-to-end CT voxels (X Y Z)"
    )
    parser.add_argument(
        "--child-timeout",
        type=float,
        default=None,
        help="seconds after which one runtime x precision is stopped and reported as such",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--runtime", default="torch", help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--ct", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 1 if args.end_to_end else 2
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    if args.child:
        print(json.dumps(child_end_to_end(args) if args.end_to_end else child_window(args)))
        return 0

    from medswin.inference.runtime import cpu_has_native_bf16

    precisions = args.precisions or (["fp32", "bf16"] if cpu_has_native_bf16() else ["fp32"])
    runtimes = args.runtimes or available_runtimes(args.end_to_end)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_runtimes_"))
    workdir.mkdir(parents=True, exist_ok=True)
    ct = make_ct(workdir, args.ct_shape) if args.end_to_end else None
    runs, failed = run_children(args, runtimes, precisions, workdir, ct)
    if ("torch", "fp32") not in runs:
        print("torch fp32 did not run; no ratios", file=sys.stderr)
        return 1
    if args.end_to_end:
        print_end_to_end_table(args, runs, failed)
    else:
        print_window_table(args, runs, failed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
