"""HD95, ASSD and NSD@2mm for every label: medswin against MONAI 1.6.1's functions, in one run.

A made-up CT-sized label pair (default 512×512×120 voxels of 0.78×0.78×2.5 mm, 6 organ-like
ellipsoids from 6 mL to 1.2 L; the prediction has shifted, rescaled, bumpy copies) is evaluated
with ``medswin.metrics.label_metrics`` (which also computes every other metric) and with MONAI's
``compute_hausdorff_distance(percentile=95)``, ``compute_average_surface_distance(symmetric=True)``
and ``compute_surface_dice([2.0] * 6)`` on one-hot tensors. Prints both times (best of
``--repeats``), their ratio, and the largest difference between the two implementations.

    python benchmarks/bench_metrics.py [--shape 512 512 120] [--jobs N] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np

SPACING = (0.78, 0.78, 2.5)
# organ-like ellipsoids: centre as a fraction of the extent, semi-axes in mm
ORGANS = (
    ((0.35, 0.45, 0.55), (90.0, 80.0, 80.0)),
    ((0.68, 0.40, 0.60), (45.0, 50.0, 55.0)),
    ((0.35, 0.70, 0.40), (30.0, 30.0, 55.0)),
    ((0.65, 0.70, 0.42), (30.0, 30.0, 55.0)),
    ((0.50, 0.80, 0.50), (25.0, 25.0, 140.0)),
    ((0.55, 0.45, 0.35), (20.0, 15.0, 25.0)),
)


def make_label_pair(
    shape: tuple[int, int, int], spacing=SPACING, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(prediction, reference) uint8 label maps with labels 1..6."""
    rng = np.random.default_rng(seed)
    extent = np.asarray(shape) * np.asarray(spacing)
    x, y, z = (np.arange(n) * s for n, s in zip(shape, spacing))
    ref = np.zeros(shape, np.uint8)
    pred = np.zeros(shape, np.uint8)
    for label, (centre, radii) in enumerate(ORGANS, start=1):
        centre = np.asarray(centre) * extent
        radii = np.asarray(radii)
        moved = centre + rng.normal(0.0, 1.5, 3)
        scaled = radii * (1.0 + rng.normal(0.0, 0.04, 3))
        for target, c, r, bumpy in ((ref, centre, radii, False), (pred, moved, scaled, True)):
            lo = np.maximum(((c - 1.2 * r) / spacing).astype(int), 0)
            hi = np.minimum(((c + 1.2 * r) / spacing).astype(int) + 1, shape)
            gx, gy, gz = np.meshgrid(
                x[lo[0] : hi[0]], y[lo[1] : hi[1]], z[lo[2] : hi[2]], indexing="ij", sparse=True
            )
            distance = ((gx - c[0]) / r[0]) ** 2 + ((gy - c[1]) / r[1]) ** 2 + ((gz - c[2]) / r[2]) ** 2
            limit = 1.0 + (0.05 * np.sin(gx / 7.0) * np.cos(gy / 9.0) if bumpy else 0.0)
            window = target[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
            window[distance <= limit] = label
    return pred, ref


def run_medswin(pred: np.ndarray, ref: np.ndarray, jobs: int | None) -> np.ndarray:
    from medswin.metrics import label_metrics

    results = label_metrics(pred, ref, SPACING, labels=range(1, 7), nsd_tolerance_mm=2.0, jobs=jobs)
    return np.array([[m.hd95, m.assd, m.nsd] for m in results])


def one_hot(pred: np.ndarray, ref: np.ndarray):
    import torch

    values = np.arange(1, 7, dtype=np.uint8)[:, None, None, None]
    return torch.from_numpy(pred[None] == values)[None], torch.from_numpy(ref[None] == values)[None]


def run_monai(p, r) -> np.ndarray:
    from monai.metrics import (
        compute_average_surface_distance,
        compute_hausdorff_distance,
        compute_surface_dice,
    )

    common = {"include_background": True, "spacing": SPACING}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hd95 = compute_hausdorff_distance(p, r, percentile=95, **common)[0]
        assd = compute_average_surface_distance(p, r, symmetric=True, **common)[0]
        nsd = compute_surface_dice(p, r, [2.0] * 6, **common)[0]
    return np.stack([hd95.numpy(), assd.numpy(), nsd.numpy()], axis=1).astype(np.float64)


def best_of(repeats: int, function, *args):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function(*args)
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shape", type=int, nargs=3, default=(512, 512, 120))
    parser.add_argument(
        "--jobs", type=int, default=None, help="medswin threads over labels (default: all CPUs)"
    )
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    import monai
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    start = time.perf_counter()
    pred, ref = make_label_pair(tuple(args.shape))
    print(
        f"label pair {tuple(args.shape)} at {SPACING} mm, 6 labels, made in {time.perf_counter() - start:.1f} s"
    )
    for label in range(1, 7):
        print(
            f"  label {label}: ref {np.count_nonzero(ref == label):>8} voxels, pred {np.count_nonzero(pred == label):>8}"
        )

    one_hot_time, (p, r) = best_of(1, one_hot, pred, ref)
    # warm both paths once (imports, KD-tree code, MONAI transforms) so neither pays start-up costs
    run_medswin(pred[:64, :64, :16], ref[:64, :64, :16], args.jobs)
    run_monai(p[..., :64, :64, :16], r[..., :64, :64, :16])

    medswin_time, ours = best_of(args.repeats, run_medswin, pred, ref, args.jobs)
    monai_time, theirs = best_of(args.repeats, run_monai, p, r)
    difference = np.abs(ours - theirs)
    print(f"CPUs: {os.cpu_count()}, medswin jobs: {args.jobs or os.cpu_count()}, monai {monai.__version__}")
    print(f"medswin (HD95 + ASSD + NSD and all other metrics, from label maps): {medswin_time:8.3f} s")
    print(
        f"MONAI   (3 functions on one-hot tensors; one-hot took {one_hot_time:.2f} s more): {monai_time:8.3f} s"
    )
    print(f"speed-up MONAI / medswin: {monai_time / medswin_time:.1f}x (target >= 10x)")
    print(
        f"largest difference: HD95 {difference[:, 0].max():.2e} mm, ASSD {difference[:, 1].max():.2e} mm, NSD {difference[:, 2].max():.2e}"
    )
    print("label    HD95 mm (ours / MONAI)     ASSD mm (ours / MONAI)     NSD@2mm (ours / MONAI)")
    for label, (a, b) in enumerate(zip(ours, theirs), start=1):
        print(
            f"{label:>5}  {a[0]:9.4f} / {b[0]:9.4f}     {a[1]:9.4f} / {b[1]:9.4f}     {a[2]:9.4f} / {b[2]:9.4f}"
        )


if __name__ == "__main__":
    main()
