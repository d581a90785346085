"""BTCV Swin UNETR end to end on a CUDA GPU: medswin's Predictor (fp32 / fp16 / bf16) against the plain
MONAI flow, in one run, with peak GPU memory.

Ready for the day a GPU is at hand; until then README says it has not been run on one. It imports
only the inference path (torch, numpy, scipy, einops, safetensors, MONAI, nibabel, jsonschema), so it
runs where only PyTorch with CUDA is installed plus pure-Python wheels carried along:

    python benchmarks/bench_gpu.py --fetch-wheels benchmarks/.gpu_wheels   # here, with the package index
    # copy the repository with benchmarks/.gpu_wheels to the GPU machine, then there:
    python benchmarks/bench_gpu.py --wheels benchmarks/.gpu_wheels --json result.json

``--wheels`` unpacks every wheel that fits the running Python (``py3-none-any``, or this CPython's
manylinux x86_64 build for rpds-py, jsonschema's one compiled dependency) into a folder beside them
and puts it first on ``sys.path``; nothing is installed.

The case: a made-up CT of 512x512x120 voxels (0.78x0.78x2.5 mm, DICOM-style LPS array order;
:func:`medswin.data.phantom.make_ct_phantom`), in memory. The network: the BTCV card (14 classes,
1.5x1.5x2 mm, 96³ windows, overlap 0.5, Gaussian blending), SwinUNETR at ``--feature-size`` (48, the
published model's) with seeded random weights (time does not depend on their values).

Flows, each run twice on the same GPU (the first warms cuDNN and the allocator; the second is timed),
wall time from the in-memory image to labels on the input grid, ``torch.cuda.synchronize()``-ed:

* MONAI, device=cuda: ``Orientationd`` RAS, ``Spacingd``, ``ScaleIntensityRanged`` on the CPU, then
  ``sliding_window_inference`` with the volume and its output buffer on the GPU, ``argmax``,
  ``Invertd`` (nearest) back to the input grid: the flow of the BTCV tutorial on a GPU;
* MONAI, sw_device=cuda, device=cpu: the same with the ``classes x volume`` output buffer in host
  memory (what MONAI users do when a volume's buffer does not fit the GPU);
* medswin fp32 / fp16 / bf16: ``Predictor(device="cuda", runtime="torch")``: the model-grid volume
  stays on the GPU when it fits (pinned host memory when it does not), stitching reduces planes to
  labels as they complete, labels go back to the input grid.

Reported: seconds, ratio to MONAI device=cuda, peak GPU memory (``max_memory_allocated``), and the
share of input-grid voxels whose labels equal MONAI's (random weights make near-ties common, so this
is numerical agreement, not accuracy). Goal (issue "fast by default"): medswin at most 0.5x the plain
MONAI flow, and a BTCV CT in under 5 s on an H100-class GPU.

``--device cpu`` with small ``--ct-shape``/``--feature-size`` runs the same code on a CPU (the tests do).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path
from typing import Any

#: what the GPU image lacks: pure-Python wheels, plus two compiled ones: rpds-py (jsonschema's; one
#: wheel per CPython) and SimpleITK (the way back to the input grid; one abi3 wheel for 3.11+, ~52 MB).
WHEELS = (
    "SimpleITK",
    "monai",
    "nibabel",
    "packaging",
    "importlib-resources",
    "jsonschema",
    "jsonschema-specifications",
    "referencing",
    "attrs",
    "typing-extensions",
    "rpds-py",
)
PYTHONS = ("3.10", "3.11", "3.12", "3.13")
CT_SPACING = (0.78, 0.78, 2.5)


# ------------------------------------------------------------------------------------------- wheels
def fetch_wheels(folder: Path) -> None:
    """Download :data:`WHEELS` for every Python in :data:`PYTHONS` (run where the package index is)."""
    folder.mkdir(parents=True, exist_ok=True)
    for python in PYTHONS:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
        command += ["--python-version", python, "--platform", "manylinux2014_x86_64", "-d", str(folder)]
        subprocess.run([*command, *WHEELS], check=True)
    print(f"{len(list(folder.glob('*.whl')))} wheels in {folder}", file=sys.stderr)


def _fits_this_python(name: str) -> bool:
    python, abi, platform = name[: -len(".whl")].split("-")[-3:]  # the wheel's three tags
    major, minor = sys.version_info[:2]
    here = f"cp{major}{minor}"
    if platform == "any":
        return "py3" in python.split(".") or here in python.split(".")
    machine = sysconfig.get_platform().split("-")[-1]  # x86_64
    if machine not in platform:
        return False
    if abi == "abi3":  # the stable ABI: built for cpXY, runs on XY and later
        oldest = min(int(tag[3:]) for tag in python.split(".") if tag.startswith("cp3"))
        return minor >= oldest
    return here in python.split(".") and abi == here


def use_wheels(folder: Path) -> None:
    """Unpack the wheels in ``folder`` that fit this Python into ``folder/site-cpXY`` and import from there."""
    site = folder / f"site-cp{sys.version_info.major}{sys.version_info.minor}"
    if not site.is_dir():
        staging = site.with_suffix(".partial")
        for wheel in sorted(folder.glob("*.whl")):
            if _fits_this_python(wheel.name):
                with zipfile.ZipFile(wheel) as archive:
                    archive.extractall(staging)
        staging.rename(site)
    sys.path.insert(0, str(site))


# -------------------------------------------------------------------------------------------- flows
def synchronize(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(device: str, run: Any) -> tuple[Any, float, float]:
    """``(result, seconds, peak GPU MB)`` of ``run()`` (peak 0 on a CPU)."""
    import torch

    gpu = device.startswith("cuda")
    if gpu:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    synchronize(device)
    start = time.perf_counter()
    result = run()
    synchronize(device)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**20 if gpu else 0.0
    return result, seconds, peak


def monai_flow(image: Any, card: Any, network: Any, device: str, buffer_device: str, sw_batch: int) -> Any:
    """The plain MONAI flow on an in-memory image: labels ``(X, Y, Z)`` uint8 on the input grid."""
    import numpy as np
    import torch
    from monai.data import MetaTensor
    from monai.inferers import sliding_window_inference
    from monai.transforms import Compose, Invertd, Orientationd, ScaleIntensityRanged, Spacingd

    window = card.intensity
    pre = Compose(
        [
            Orientationd(keys="image", axcodes=card.orientation),
            Spacingd(keys="image", pixdim=card.spacing, mode="bilinear"),
            ScaleIntensityRanged(
                keys="image", a_min=window["a_min"], a_max=window["a_max"], b_min=0.0, b_max=1.0, clip=True
            ),
        ]
    )
    data = pre({"image": MetaTensor(torch.as_tensor(image.array, dtype=torch.float32), affine=image.affine)})
    with torch.no_grad():
        logits = sliding_window_inference(
            data["image"][None].to(device),
            card.roi_size,
            sw_batch,
            network,
            overlap=card.overlap,
            mode="gaussian",
            sw_device=device,
            device=buffer_device,
        )[0]
    data["pred"] = logits.argmax(0, keepdim=True).to("cpu", torch.float32)
    data["pred"].applied_operations = list(data["image"].applied_operations)
    data["pred"].meta = dict(data["image"].meta)
    inverted = Invertd(keys="pred", transform=pre, orig_keys="image", nearest_interp=True)(data)["pred"]
    return np.asarray(inverted[0].cpu().numpy(), dtype=np.uint8)


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np
    import torch
    from bench_runtimes import bench_card  # the same network as the CPU benchmark

    from medswin.data.phantom import make_ct_phantom
    from medswin.inference import Predictor

    card = bench_card(args.feature_size, args.roi)
    torch.manual_seed(0)
    network = card.create_model().eval().to(args.device)
    image = make_ct_phantom(shape=tuple(args.ct_shape), spacing=CT_SPACING, orientation="LPS", seed=7).image
    image = image.with_array(np.round(image.array).astype(np.float32))
    flows: dict[str, Any] = {
        "MONAI, device=cuda": lambda: monai_flow(
            image, card, network, args.device, args.device, args.sw_batch_size
        ),
        "MONAI, sw_device=cuda, device=cpu": lambda: monai_flow(
            image, card, network, args.device, "cpu", args.sw_batch_size
        ),
    }
    for precision in args.precisions:
        predictor = Predictor(
            network,
            card=card,
            device=args.device,
            precision=precision,
            runtime="torch",
            sw_batch_size=args.sw_batch_size,
        )
        flows[f"medswin {precision}"] = lambda predictor=predictor: np.asarray(
            predictor.predict(image).labels.array[0]
        )
    rows: dict[str, dict[str, Any]] = {}
    reference = None
    for name, flow in flows.items():
        _, first, _ = timed(args.device, flow)  # warm-up: cuDNN autotuning, allocator
        labels, seconds, peak = timed(args.device, flow)
        if reference is None:
            reference = labels
        rows[name] = {
            "seconds": seconds,
            "first_seconds": first,
            "peak_gpu_mb": peak,
            "labels_equal": float(np.mean(labels == reference)) if labels.shape == reference.shape else None,
        }
        print(f"done {name}: {seconds:.2f} s", file=sys.stderr)
    gpu = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu"
    return {"device": gpu, "torch": torch.__version__, "ct_shape": args.ct_shape, "flows": rows}


def print_table(result: dict[str, Any], args: argparse.Namespace) -> None:
    rows = result["flows"]
    base = rows["MONAI, device=cuda"]["seconds"]
    shape = "x".join(map(str, args.ct_shape))
    print(
        f"{result['device']}, torch {result['torch']}: {shape} CT, BTCV card, SwinUNETR fs{args.feature_size}, "
        f"{'x'.join(map(str, args.roi))} windows, sw_batch_size {args.sw_batch_size}; second of two runs"
    )
    print(f"{'flow':<36} {'s':>8} {'first s':>8} {'vs MONAI':>9} {'peak GPU MB':>12} {'labels = MONAI':>15}")
    for name, row in rows.items():
        equal = "-" if row["labels_equal"] is None else f"{row['labels_equal']:.4%}"
        print(
            f"{name:<36} {row['seconds']:>8.2f} {row['first_seconds']:>8.2f} {row['seconds'] / base:>8.2f}x "
            f"{row['peak_gpu_mb']:>12.0f} {equal:>15}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--fetch-wheels", type=Path, metavar="DIR", help="download the wheels the GPU image lacks"
    )
    parser.add_argument("--wheels", type=Path, metavar="DIR", help="import MONAI & co. from these wheels")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "fp16", "bf16"])
    parser.add_argument("--feature-size", type=int, default=48)
    parser.add_argument("--roi", type=int, nargs=3, default=[96, 96, 96])
    parser.add_argument("--ct-shape", type=int, nargs=3, default=[512, 512, 120])
    parser.add_argument("--sw-batch-size", type=int, default=4, help="windows per network call (both flows)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if args.fetch_wheels:
        fetch_wheels(args.fetch_wheels)
        return 0
    if args.wheels:
        use_wheels(args.wheels)
    here = Path(__file__).resolve().parent
    sys.path[:0] = [str(here), str(here.parent)]  # bench_runtimes beside it, medswin from this checkout
    result = run_all(args)
    print_table(result, args)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
