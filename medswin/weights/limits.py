"""How long a download may stall, how often it is retried, and how large a weights file may be.

Each limit has a default meant for real networks and real models and an environment variable that
overrides it (tests set tiny ones; a site behind a slow link may raise them). Read at every pull,
so a changed variable applies to the next one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from medswin.errors import WeightsError

__all__ = [
    "CONNECT_TIMEOUT_ENV",
    "READ_TIMEOUT_ENV",
    "ATTEMPTS_ENV",
    "BACKOFF_ENV",
    "MAX_MB_ENV",
    "MIN_RATE",
    "Limits",
    "limits",
]

CONNECT_TIMEOUT_ENV = "MEDSWIN_CONNECT_TIMEOUT"
READ_TIMEOUT_ENV = "MEDSWIN_READ_TIMEOUT"
ATTEMPTS_ENV = "MEDSWIN_DOWNLOAD_ATTEMPTS"
BACKOFF_ENV = "MEDSWIN_RETRY_BACKOFF"
MAX_MB_ENV = "MEDSWIN_WEIGHTS_MAX_MB"

#: a transfer slower than this (bytes/s) over a whole read-timeout window counts as stalled
MIN_RATE = 1024


@dataclass(frozen=True)
class Limits:
    """Download and extraction limits.

    Attributes:
        connect_timeout: seconds to connect and receive the response headers.
        read_timeout: seconds in which at least ``MIN_RATE`` bytes/s must arrive, so a dripping
            server fails after this long (a per-read socket timeout alone never fires on a
            server that sends one byte every few seconds). The socket timeout is the shorter of
            the two: a server silent that long is dropped.
        attempts: tries per URL for a transient failure (timeout, dropped connection, HTTP 5xx);
            each one resumes the partial file.
        backoff: seconds before the first retry; doubles for each further one (at most 60 s).
        max_bytes: the most a weights file may weigh, downloaded or unpacked from a zip (the
            published files are below 1 GB; a larger one is a lying server or a zip bomb).
    """

    connect_timeout: float = 30.0
    read_timeout: float = 60.0
    attempts: int = 4
    backoff: float = 2.0
    max_bytes: int = 2048 * 10**6

    def retry_delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1 = the first retry)."""
        return min(self.backoff * 2 ** (attempt - 1), 60.0)

    @property
    def max_text(self) -> str:
        return f"{self.max_bytes / 1e6:,.0f} MB limit ({MAX_MB_ENV})"


def _number(name: str, default: float, *, minimum: float) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= minimum:  # also refuses nan
        raise WeightsError(f"{name}={text!r}: expected a number of at least {minimum:g}")
    return value


def limits() -> Limits:
    """The limits in force: defaults, each overridden by its environment variable when set."""
    base = Limits()
    return Limits(
        connect_timeout=_number(CONNECT_TIMEOUT_ENV, base.connect_timeout, minimum=0.01),
        read_timeout=_number(READ_TIMEOUT_ENV, base.read_timeout, minimum=0.01),
        attempts=int(_number(ATTEMPTS_ENV, base.attempts, minimum=1)),
        backoff=_number(BACKOFF_ENV, base.backoff, minimum=0),
        max_bytes=int(_number(MAX_MB_ENV, base.max_bytes / 1e6, minimum=0.001) * 1e6),
    )
