"""Summary statistics of a metric over cases: one definition for every medswin summary."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["describe"]


def describe(values: Sequence[float]) -> dict[str, float | int | None]:
    """``n``, ``n_nonfinite``, ``mean``, sample ``std``, ``median``, ``min`` and ``max`` of ``values``.

    Nothing is dropped: a non-finite value (a false positive's relative volume difference is +inf)
    makes the mean non-finite and is counted in ``n_nonfinite``, so a summary cannot look better for
    it. With no values the statistics are None (JSON null), never NaN. One value has std 0.
    """
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        return {"n": 0, "n_nonfinite": 0, "mean": None, "std": None, "median": None, "min": None, "max": None}
    with np.errstate(invalid="ignore"):
        return {
            "n": int(array.size),
            "n_nonfinite": int(array.size - np.count_nonzero(np.isfinite(array))),
            "mean": float(array.mean()),
            "std": float(array.std(ddof=1)) if array.size > 1 else 0.0,
            "median": float(np.median(array)),
            "min": float(array.min()),
            "max": float(array.max()),
        }
