"""Shared type aliases."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Union

import numpy as np

__all__ = ["PathLike", "Spacing", "ProgressCallback", "CancelCheck", "ArrayLike"]

PathLike = Union[str, "os.PathLike[str]"]
Spacing = tuple[float, ...]
ArrayLike = np.ndarray
#: progress(done, total, message) — called from long operations; never required.
ProgressCallback = Callable[[int, int, str], None]
#: cancel() -> True when the caller wants the operation to stop.
CancelCheck = Callable[[], bool]
