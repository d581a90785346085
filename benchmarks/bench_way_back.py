"""Peak memory of the two ways back to the input grid: labels (nearest) vs probabilities (linear, then argmax).

A card's ``inference.resample`` decides what leaves the model grid. ``labels`` reduces every finished
slab to uint8 labels while stitching; ``probabilities`` (the MONAI bundle protocol, ``Invertd`` with
``nearest_interp: false``) keeps the K-class probabilities of the model grid in float32 and then
resamples one class at a time onto the input grid, folding each into a running maximum.

Both run here on a made-up 512x512xN CT (0.78x0.78x2.5 mm, LPS) with the BTCV card (14 classes, RAS,
1.5x1.5x2 mm, 96^3 windows) and a stand-in 1x1x1-convolution network, so the numbers are the
pipeline's own buffers. Each way runs in its own process; the table gives wall time and peak RSS.

    python benchmarks/bench_way_back.py                 # 512x512x400
    python benchmarks/bench_way_back.py --slices 120

Measured (Intel Xeon 2.8 GHz, 2 vCPUs, AVX-512 without BF16, idle), 512x512x400: labels 47.9 s,
peak RSS 4397 MB; probabilities 124.6 s, 6577 MB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(resample: str, slices: int) -> dict[str, Any]:
    import torch

    from medswin.inference import Predictor
    from medswin.io.image import Image
    from medswin.models import preset_card

    rng = np.random.default_rng(0)
    array = rng.integers(-1000, 400, size=(1, 512, 512, slices), dtype=np.int16).astype(np.float32)
    image = Image(array, (0.78, 0.78, 2.5), (-200.0, -200.0, -300.0), np.eye(3))
    card = preset_card("swin_unetr_btcv").replace(resample=resample)
    torch.manual_seed(0)
    network = torch.nn.Conv3d(1, 14, kernel_size=1).eval()
    predictor = Predictor(network, card=card, device="cpu", precision="fp32")
    before = peak_rss_mb()
    start = time.perf_counter()
    labels = predictor.predict(image).labels.array
    return {
        "resample": resample,
        "seconds": time.perf_counter() - start,
        "peak_rss_mb": peak_rss_mb(),
        "rss_before_predict_mb": before,
        "labels": int(np.count_nonzero(labels)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--slices", type=int, default=400)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.slices)))
        return 0
    rows = []
    for resample in ("labels", "probabilities"):
        done = subprocess.run(
            [sys.executable, __file__, "--slices", str(args.slices), "--child", resample],
            capture_output=True,
            text=True,
            check=True,
        )
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"512x512x{args.slices} CT, BTCV card (14 classes), stand-in network, fp32")
    print(f"{'way back':<14} {'seconds':>8} {'peak RSS MB':>12} {'RSS before predict MB':>22}")
    for row in rows:
        print(
            f"{row['resample']:<14} {row['seconds']:>8.1f} {row['peak_rss_mb']:>12.0f} "
            f"{row['rss_before_predict_mb']:>22.0f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
