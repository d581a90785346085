"""What the quality checks cost a prediction: ``Predictor.predict`` with and without them.

The checks run inside ``predict()``: the confidence gathered while stitching (one log-sum-exp and
two bincounts per finished plane) and ``assess_volume`` at the end (fit, sides, volumes, pieces,
edges on the input grid). Two numbers: QC's own time (the gatherer's calls are timed inside
``predict``, plus ``timings["qc"]``) as a share of the prediction, which machine load barely moves;
and the wall-clock medians of ``predict`` with and without QC (both replaced by no-ops), run
alternately so drifting load hits both alike, which on a shared machine carry its noise.

Data: a made-up CT (:func:`medswin.data.phantom.make_ct_phantom`), 256x256x96 voxels of
1.2x1.2x3 mm (a 307 mm field of view), LPS; model: the shipped demo model (``-m demo``).

Run: ``python benchmarks/bench_qc.py [--repeats 5] [--device cpu|cuda] [--shape 256 256 96]``.
Target: QC adds at most 10 % of the prediction time.

Measured here (2 vCPUs shared with other jobs, load average 4-11; torch 2.13, 2026-12-07):

    predict with QC     median 60.830 s  (runs: 51.746, 60.830, 87.004)
    predict without QC  median 57.278 s  (runs: 48.629, 88.390, 57.278)
    confidence gathering median 0.383 s, assess_volume median 0.243 s
    QC's own time: 1.0 % of predict; wall-clock medians +6.2 % (an earlier run: +18.1 %, noise)
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import contextmanager
from typing import Any


@contextmanager
def _without_qc(predictor: Any) -> Any:
    """The predictor with the confidence gatherer and ``assess_volume`` replaced by no-ops."""
    import medswin.inference.predictor as module
    from medswin.qc.core import QualityReport

    class NoGatherer:
        def __init__(self, card: Any) -> None:
            pass

        def __call__(self, logits: Any, labels: Any) -> None:
            pass

        def means(self) -> dict[int, float]:
            return {}

    saved = module.ConfidenceGatherer
    module.ConfidenceGatherer = NoGatherer  # type: ignore[assignment,misc]
    predictor._assess = lambda *args, **kwargs: QualityReport()
    try:
        yield predictor
    finally:
        module.ConfidenceGatherer = saved  # type: ignore[misc]
        del predictor._assess


@contextmanager
def _timed_gatherer(spent: list[float]) -> Any:
    """The real confidence gatherer, its time inside ``predict`` added to ``spent``."""
    import medswin.inference.predictor as module

    saved = module.ConfidenceGatherer

    class TimedGatherer(saved):  # type: ignore[misc,valid-type]
        def __call__(self, logits: Any, labels: Any) -> None:
            tick = time.perf_counter()
            super().__call__(logits, labels)
            spent.append(time.perf_counter() - tick)

    module.ConfidenceGatherer = TimedGatherer  # type: ignore[misc]
    try:
        yield
    finally:
        module.ConfidenceGatherer = saved  # type: ignore[misc]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--shape", type=int, nargs=3, default=(256, 256, 96))
    args = parser.parse_args(argv)

    from medswin.data.phantom import make_ct_phantom
    from medswin.inference import Predictor

    image = make_ct_phantom(shape=tuple(args.shape), spacing=(1.2, 1.2, 3.0), seed=42).image
    predictor = Predictor("demo", device=args.device)
    predictor.predict(image)  # warm-up: allocator, kernels
    with_qc: list[float] = []
    without: list[float] = []
    assess: list[float] = []
    gathering: list[float] = []  # per run: seconds inside the confidence gatherer
    for _ in range(args.repeats):
        spent: list[float] = []
        with _timed_gatherer(spent):
            tick = time.perf_counter()
            result = predictor.predict(image)
            with_qc.append(time.perf_counter() - tick)
        gathering.append(sum(spent))
        assess.append(result.timings["qc"])
        with _without_qc(predictor):
            tick = time.perf_counter()
            plain = predictor.predict(image)
            without.append(time.perf_counter() - tick)
        assert (plain.labels.array == result.labels.array).all(), "QC changed the labels"
    a, b = statistics.median(with_qc), statistics.median(without)
    print(f"CT {'x'.join(map(str, args.shape))} voxels, demo model, {args.device}, {args.repeats} runs each")
    print(f"predict with QC     median {a:.3f} s  (runs: {', '.join(f'{t:.3f}' for t in with_qc)})")
    print(f"predict without QC  median {b:.3f} s  (runs: {', '.join(f'{t:.3f}' for t in without)})")
    own = [g + q for g, q in zip(gathering, assess, strict=True)]
    print(f"confidence gathering median {statistics.median(gathering):.3f} s (inside predict with QC)")
    print(f"assess_volume        median {statistics.median(assess):.3f} s")
    print(
        f"QC's own time: {100 * statistics.median([o / t for o, t in zip(own, with_qc, strict=True)]):.1f} % of predict"
    )
    print(
        f"wall-clock medians differ by {100 * (a - b) / b:+.1f} % (machine noise included); verdict {result.quality.verdict}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
