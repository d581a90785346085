"""medswin's Predictor against the plain MONAI inference flow, on one made-up CT, in one run.

What is compared (each flow in its own subprocess, so peak RSS is measured separately):

(a) the plain MONAI flow of the SwinUNETR BTCV tutorials: ``LoadImaged``, ``EnsureChannelFirstd``,
    ``Orientationd`` RAS, ``Spacingd`` 1.5x1.5x2.0 mm, ``ScaleIntensityRanged`` -175..250 -> 0..1,
    ``sliding_window_inference`` 96³, overlap 0.5, Gaussian, ``AsDiscreted`` argmax, ``Invertd``
    (nearest), ``SaveImaged``; fp32 under ``torch.no_grad()``, MONAI's ``SwinUNETR`` as built;
(b) ``medswin.batch.run_batch`` (what ``medswin predict`` runs) with a
    :class:`~medswin.inference.Predictor` on the same checkpoint, writing ``<case>.nii.gz`` on the
    input grid plus its record; bf16 (and, for reference, fp32).

Both use ``sw_batch_size=1`` (batching windows does not help on CPU) and torch's default threads.

Data: a made-up CT (:func:`medswin.data.phantom.make_ct_phantom`, 512x512x120 voxels,
0.78x0.78x2.5 mm, DICOM-style LPS array order, i.e. an LPS-flipped NIfTI affine), written as int16
NIfTI.

Model: SwinUNETR, feature size 12, 14 output classes. Random weights label noise, and a label
map of noise makes any agreement number meaningless (every voxel is a near tie). So the network is
trained briefly here (600 AdamW steps, one-cycle lr 3e-3, Dice+CE without background, bf16
autocast where the CPU has AVX-512 BF16/AMX and fp32 elsewhere, 64x64x32 crops, 80 % of them centred on an organ voxel, from two *other* phantoms, seeds
101/102, made directly on the model grid; 6 min on 2 idle cores, 16 min on this busy machine) and saved as a medswin checkpoint, which both
flows load. Its classes: 1 liver, 2 spleen, 3 kidneys (left and right look alike to a
translation-equivariant network, so they are one class), 4 vertebra; 5-13 unused. The script prints
its Dice against the phantom's own labels to show the output is structured. The checkpoint and the CT
are cached in ``--workdir`` and reused by later runs.

A second comparison measures memory on a 512x512x600 CT (the same CT repeated along z) with a
stand-in 1x1x1-convolution network, so that only the pipelines' own buffers count.

Run: ``python benchmarks/bench_predict.py [--workdir DIR] [--steps 600] [--no-fp32] [--no-large]``.
Targets: (b) wall time <= 0.35 x (a), Dice(a, b) >= 0.99 on every label, peak RSS (b) <= (a).
The machine may be shared: timings are one run each, not medians.

Measured here (2 vCPUs shared with other jobs; one run each; torch 2.13, MONAI 1.6.1):

    flow               wall s  ratio  user s  sys s  peak RSS MB
    (a) MONAI fp32      209.5   1.00   216.3  183.6         3007
    (b) medswin bf16     60.5   0.29   117.2    1.0         2441
    (b) medswin fp32     76.6   0.37   148.9    1.0         2188
    Dice (b) vs (a), bf16: liver 0.980, "kidneys" 0.881, vertebra 0.994
                     fp32: liver 0.992, "kidneys" 0.954, vertebra 0.998
    the model vs the phantom's truth: liver 0.70, vertebra 0.54, spleen 0.00, kidneys 0.00
    (its "kidneys" are scattered voxels, near ties everywhere, hence the low agreement)
    600-slice CT, stand-in network: MONAI 70.6 s, 12511 MB; medswin 47.4 s, 3432 MB; Dice 1.0

An earlier run of the same script measured ratios 0.24 (bf16) and 0.31 (fp32): expect +-20 % noise.

Measured on a 2-vCPU AMD EPYC without AVX-512 (AVX2 only; 2026-12-01, ``--no-large``; the model
trained in fp32 there, 805 s; bf16 not run because it would be emulated):

    flow               wall s  ratio  user s  sys s  peak RSS MB
    (a) MONAI fp32      512.7   1.00   392.2  495.6         2917
    (b) medswin fp32    157.9   0.31   299.2    3.3         2478
    Dice (b) vs (a): liver 0.9952, vertebra 0.9988 (neither flow predicts the other classes)
    the model vs the phantom's truth: liver 0.85, vertebra 0.67, spleen 0.00, kidneys 0.00
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROI = (96, 96, 96)
OVERLAP = 0.5
SPACING = (1.5, 1.5, 2.0)
WINDOW = (-175.0, 250.0)
CT_SHAPE = (512, 512, 120)
CT_SPACING = (0.78, 0.78, 2.5)
CT_SEED = 7
#: phantom label (1 liver, 2 spleen, 3/4 kidneys, 5 vertebra) -> benchmark model class
PHANTOM_TO_CLASS = np.array([0, 1, 2, 3, 3, 4], dtype=np.int64)
CLASS_NAMES = {0: "background", 1: "liver", 2: "spleen", 3: "kidneys", 4: "vertebra"}
#: slices of the CT used for the memory comparison with a stand-in network
LARGE_SLICES = 600
#: training steps of the benchmark model (its checkpoint is cached per step count)
STEPS = 600


# ------------------------------------------------------------------------------------ setup
def bench_card() -> Any:
    from medswin.models import preset_card

    card = preset_card("swin_unetr_btcv")
    labels = {k: CLASS_NAMES.get(k, f"unused {k}") for k in range(14)}
    return card.replace(
        id="bench_swin_unetr_fs12",
        description="benchmark model: SwinUNETR fs12 trained briefly on made-up CT phantoms",
        config={**card.config, "feature_size": 12, "legacy_merging": False, "use_flash_attention": False},
        labels=labels,
        colors={},
        provenance={"training": "benchmarks/bench_predict.py: brief training on phantoms"},
    )


def make_ct(workdir: Path) -> tuple[Path, Path]:
    """The benchmark CT (int16 NIfTI) and its phantom labels; reused when present."""
    from medswin.data.phantom import make_ct_phantom
    from medswin.io import write_image, write_labels

    ct, truth = workdir / "bench_ct.nii.gz", workdir / "bench_ct_truth.nii.gz"
    if not (ct.exists() and truth.exists()):
        case = make_ct_phantom(shape=CT_SHAPE, spacing=CT_SPACING, orientation="LPS", seed=CT_SEED)
        write_image(case.image.with_array(np.round(case.image.array)), ct, dtype=np.int16)
        write_labels(case.labels, truth)
    return ct, truth


def train_model(workdir: Path, steps: int, seed: int = 0) -> Path:
    """Train the benchmark SwinUNETR briefly on phantoms made on the model grid; cached by step count."""
    import torch
    from monai.losses import DiceCELoss

    from medswin.data.phantom import make_ct_phantom
    from medswin.inference.runtime import configure_cpu_runtime
    from medswin.models import save_checkpoint

    path = workdir / f"bench_swin_unetr_fs12_{steps}steps.safetensors"
    if path.exists():
        return path
    configure_cpu_runtime()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model_grid = tuple(int(round(n * s / t)) for n, s, t in zip(CT_SHAPE, CT_SPACING, SPACING))
    images, targets = [], []
    for phantom_seed in (101, 102):  # same field of view as the CT, other organ jitter and noise
        case = make_ct_phantom(shape=model_grid, spacing=SPACING, orientation="RAS", seed=phantom_seed)
        hu = case.image.array[0]
        images.append(np.clip((hu - WINDOW[0]) / (WINDOW[1] - WINDOW[0]), 0, 1).astype(np.float32))
        targets.append(PHANTOM_TO_CLASS[case.labels.array[0]])
    card = bench_card()
    network = card.create_model()
    network.train()
    optimiser = torch.optim.AdamW(network.parameters(), lr=3e-3, weight_decay=1e-5)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=3e-3, total_steps=steps, pct_start=0.1)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True, include_background=False)
    crop = (64, 64, 32)  # a small SwinUNETR input with a 4-voxel bottleneck: ~0.6 s per step on 2 idle cores
    from medswin.inference.runtime import cpu_has_native_bf16

    native_bf16 = cpu_has_native_bf16()  # emulated bf16 is ~8x slower than fp32 (AVX2 CPUs)
    start = time.perf_counter()
    for step in range(steps):
        which = int(rng.integers(len(images)))
        image, target = images[which], targets[which]
        if rng.random() < 0.8:  # most crops centred on an organ voxel
            organ = np.argwhere(target > 0)
            centre = organ[rng.integers(len(organ))]
        else:
            centre = np.array([rng.integers(n) for n in image.shape])
        low = [int(np.clip(c - k // 2, 0, n - k)) for c, k, n in zip(centre, crop, image.shape)]
        box = tuple(slice(lo, lo + k) for lo, k in zip(low, crop))
        x = torch.from_numpy(image[box])[None, None]
        y = torch.from_numpy(target[box])[None, None]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=native_bf16):
            logits = network(x)
        loss = loss_fn(logits.float(), y)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        if step % 50 == 0 or step == steps - 1:
            print(
                f"  train step {step + 1}/{steps}: loss {loss.item():.3f} ({time.perf_counter() - start:.0f} s)"
            )
    network.eval()
    return save_checkpoint(network, card, path)


def make_large_ct(workdir: Path, ct: Path) -> Path:
    """A 600-slice CT for the memory comparison: the benchmark CT repeated along z (int16)."""
    from medswin.io import read_image, write_image
    from medswin.io.image import Image

    large = workdir / f"bench_ct_{LARGE_SLICES}.nii.gz"
    if not large.exists():
        image = read_image(ct)
        repeats = -(-LARGE_SLICES // image.shape[2])
        array = np.tile(image.array, (1, 1, 1, repeats))[..., :LARGE_SLICES]
        write_image(Image(array, image.spacing, image.origin, image.direction), large, dtype=np.int16)
    return large


def standin_network() -> Any:
    """A 1x1x1 convolution 1 -> 14 classes: costs nothing, so peak memory is the pipeline's own."""
    import torch

    torch.manual_seed(0)
    return torch.nn.Conv3d(1, 14, kernel_size=1).eval()


# ------------------------------------------------------------------------------------ children
def peak_rss_mb() -> float:
    """This process's peak resident memory (MiB).

    ``VmHWM`` of ``/proc/self/status`` belongs to the process's own address space; ``ru_maxrss``
    would also count the parent's memory at ``fork`` time (Linux keeps it across ``exec``).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _usage(start: float) -> dict[str, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "seconds": time.perf_counter() - start,
        "user_s": usage.ru_utime,
        "sys_s": usage.ru_stime,
        "peak_rss_mb": peak_rss_mb(),
    }


def child_monai(ct: Path, checkpoint: Path, out_dir: Path) -> dict[str, Any]:
    """(a) The plain MONAI flow."""
    import torch
    from monai.inferers import sliding_window_inference
    from monai.networks.nets import SwinUNETR
    from monai.transforms import (
        AsDiscreted,
        Compose,
        EnsureChannelFirstd,
        Invertd,
        LoadImaged,
        Orientationd,
        SaveImaged,
        ScaleIntensityRanged,
        Spacingd,
    )
    from safetensors.torch import load_file

    start = time.perf_counter()
    if str(checkpoint) == "standin":
        network = standin_network()
    else:
        network = SwinUNETR(in_channels=1, out_channels=14, feature_size=12)
        network.load_state_dict(load_file(str(checkpoint)), strict=True)
        network.eval()
    pre = Compose(
        [
            LoadImaged(keys="image"),
            EnsureChannelFirstd(keys="image"),
            Orientationd(keys="image", axcodes="RAS"),
            Spacingd(keys="image", pixdim=SPACING, mode="bilinear"),
            ScaleIntensityRanged(
                keys="image", a_min=WINDOW[0], a_max=WINDOW[1], b_min=0.0, b_max=1.0, clip=True
            ),
        ]
    )
    post = Compose(
        [
            AsDiscreted(keys="pred", argmax=True),
            Invertd(keys="pred", transform=pre, orig_keys="image", nearest_interp=True, to_tensor=True),
            SaveImaged(
                keys="pred",
                output_dir=str(out_dir),
                output_postfix="seg",
                separate_folder=False,
                output_dtype=np.uint8,
                resample=False,
                print_log=False,
            ),
        ]
    )
    data = pre({"image": str(ct)})
    with torch.no_grad():
        data["pred"] = sliding_window_inference(
            data["image"][None], ROI, 1, network, overlap=OVERLAP, mode="gaussian"
        )[0]
    post(data)
    result = _usage(start)
    name = ct.name[: -len(".nii.gz")]
    result["output"] = str(out_dir / f"{name}_seg.nii.gz")
    return result


def child_medswin(ct: Path, checkpoint: Path, out_dir: Path, precision: str) -> dict[str, Any]:
    """(b) medswin: one Predictor, the batch runner of ``medswin predict``."""
    from medswin.batch import BatchOptions, discover_cases, run_batch
    from medswin.inference import Predictor

    start = time.perf_counter()
    if str(checkpoint) == "standin":
        predictor = Predictor(standin_network(), card=bench_card(), precision=precision, overlap=OVERLAP)
    else:
        predictor = Predictor(str(checkpoint), precision=precision, overlap=OVERLAP, sw_batch_size=1)
    [outcome] = run_batch(predictor, discover_cases([ct]), out_dir, BatchOptions(overwrite=True)).outcomes
    if outcome.status != "done":
        raise RuntimeError(f"medswin failed on {ct}: {outcome.reason}")
    result = _usage(start)
    result["output"] = str(out_dir / f"{outcome.case_id}.nii.gz")
    result["timings"] = outcome.record["timings_s"]
    result["windows"] = outcome.record["windows"]
    return result


def run_child(args: list[str]) -> dict[str, Any]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"child {args[0]} failed:\n{done.stdout}\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_seconds"] = time.perf_counter() - started
    return result


# ------------------------------------------------------------------------------------ compare
def dice_per_label(a: np.ndarray, b: np.ndarray) -> dict[int, float]:
    """Dice of every label present in either map."""
    scores = {}
    for value in np.union1d(np.unique(a), np.unique(b)):
        if value == 0:
            continue
        x, y = a == value, b == value
        scores[int(value)] = (
            2.0 * float(np.count_nonzero(x & y)) / float(np.count_nonzero(x) + np.count_nonzero(y))
        )
    return scores


def report(runs: dict[str, dict[str, Any]], ct: Path, truth: np.ndarray | None) -> None:
    """Print time, CPU, peak memory, and label agreement of every run against the first (MONAI)."""
    from medswin.io import read_image

    names = list(runs)
    reference = runs[names[0]]
    image = read_image(ct)
    reference_labels = read_image(reference["output"], kind="label").array[0]
    print(
        f"{'flow':<18} {'wall s':>8} {'ratio':>6} {'user s':>8} {'sys s':>7} {'peak RSS MB':>12} {'process s':>10}"
    )
    for name, run in runs.items():
        print(
            f"{name:<18} {run['seconds']:>8.1f} {run['seconds'] / reference['seconds']:>6.2f} {run['user_s']:>8.1f} "
            f"{run['sys_s']:>7.1f} {run['peak_rss_mb']:>12.0f} {run['process_seconds']:>10.1f}"
        )
    for name, run in runs.items():
        labels = read_image(run["output"], kind="label")
        if name != names[0]:
            difference = labels.grid_difference(image, atol_mm=1e-4)
            print(
                f"{name}: on the input grid: {difference is None}"
                + (f" ({difference})" if difference else "")
            )
            timings = ", ".join(f"{k} {v:.1f} s" for k, v in run["timings"].items())
            print(f"  {run['windows']} windows; {timings}")
            agreement = dice_per_label(reference_labels, labels.array[0])
            worst = min(agreement.values()) if agreement else float("nan")
            print(
                f"  Dice vs {names[0]} (worst {worst:.4f}): "
                + ", ".join(f"{CLASS_NAMES.get(k, k)} {v:.4f}" for k, v in agreement.items())
            )
        if truth is not None:
            quality = dice_per_label(truth, labels.array[0])
            print(
                f"{name}: Dice vs phantom truth: "
                + ", ".join(f"{CLASS_NAMES.get(k, k)} {v:.3f}" for k, v in quality.items())
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "medswin_bench_predict")
    parser.add_argument("--steps", type=int, default=STEPS, help="training steps of the benchmark model")
    parser.add_argument("--no-fp32", action="store_true", help="skip the medswin fp32 run")
    parser.add_argument("--no-large", action="store_true", help="skip the 600-slice memory comparison")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        kind, ct, checkpoint, out_dir, *rest = args.child
        if kind == "monai":
            result = child_monai(Path(ct), Path(checkpoint), Path(out_dir))
        else:
            result = child_medswin(Path(ct), Path(checkpoint), Path(out_dir), rest[0])
        print(json.dumps(result))
        return 0

    from medswin.io import read_image

    workdir = args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"work folder {workdir}; {os.cpu_count()} CPUs (machine may be shared)")
    ct, truth_path = make_ct(workdir)
    print(f"CT {ct.name}: {CT_SHAPE} voxels, {CT_SPACING} mm, LPS array order, int16")
    checkpoint = train_model(workdir, args.steps)
    print(f"model {checkpoint.name}")

    print("\n== SwinUNETR fs12, 14 classes ==")
    runs: dict[str, dict[str, Any]] = {}
    runs["(a) MONAI fp32"] = run_child(["monai", str(ct), str(checkpoint), str(workdir / "monai")])
    from medswin.inference.runtime import cpu_has_native_bf16

    if cpu_has_native_bf16():
        runs["(b) medswin bf16"] = run_child(
            ["medswin", str(ct), str(checkpoint), str(workdir / "medswin_bf16"), "bf16"]
        )
    else:
        print("this CPU has no AVX-512 BF16/AMX: bf16 would be emulated (slower than fp32); measuring fp32")
    if not args.no_fp32 or not cpu_has_native_bf16():
        runs["(b) medswin fp32"] = run_child(
            ["medswin", str(ct), str(checkpoint), str(workdir / "medswin_fp32"), "fp32"]
        )
    truth = PHANTOM_TO_CLASS[read_image(truth_path, kind="label").array[0]]
    report(runs, ct, truth)

    if not args.no_large:
        large = make_large_ct(workdir, ct)
        print(
            f"\n== memory: {LARGE_SLICES}-slice CT (512x512x{LARGE_SLICES}), stand-in 1x1x1 conv network, fp32 =="
        )
        runs = {
            "(a) MONAI fp32": run_child(["monai", str(large), "standin", str(workdir / "large_monai")]),
            "(b) medswin fp32": run_child(
                ["medswin", str(large), "standin", str(workdir / "large_medswin"), "fp32"]
            ),
        }
        report(runs, large, None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
