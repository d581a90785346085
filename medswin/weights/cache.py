"""Where pulled weights live, a lock per model, and the checksums recorded on first download.

Layout under :func:`weights_home` (``MEDSWIN_HOME``, else the platform's cache folder)::

    weights/<name>.safetensors      converted medswin checkpoint (card inside); what -m <name> loads
    weights/<name>.lock             held while one process pulls <name>
    downloads/<file>.part           a download in progress (resumed by the next pull)
    downloads/<file>.part.json      the URL, ETag/Last-Modified and size a resume must match
    pins.json                       SHA-256 recorded at the first successful pull or import of
                                    files whose source publishes no checksum (trust on first use)
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from medswin.errors import WeightsError
from medswin.files import lock_file

__all__ = [
    "HOME_ENV",
    "OFFLINE_ENV",
    "MIRROR_ENV",
    "weights_home",
    "converted_path",
    "downloads_folder",
    "offline",
    "model_lock",
    "read_pins",
    "pins_path",
    "record_pin",
    "utc_timestamp",
]

HOME_ENV = "MEDSWIN_HOME"
OFFLINE_ENV = "MEDSWIN_OFFLINE"
MIRROR_ENV = "MEDSWIN_MIRROR"


def weights_home() -> Path:
    """``$MEDSWIN_HOME``, else ``$XDG_CACHE_HOME/medswin`` (Linux), ``~/Library/Caches/medswin`` (macOS)
    or ``%LOCALAPPDATA%\\medswin\\Cache`` (Windows)."""
    override = os.environ.get(HOME_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "medswin" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "medswin"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "medswin"


def converted_path(name: str) -> Path:
    """The converted checkpoint of registry entry ``name`` (it may not exist yet)."""
    return weights_home() / "weights" / f"{name}.safetensors"


def downloads_folder() -> Path:
    return weights_home() / "downloads"


def offline() -> bool:
    """True when ``MEDSWIN_OFFLINE`` is set to anything but empty/0/false/no."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise WeightsError(
            f"{folder}: cannot create the weights cache ({error.strerror or error}); set {HOME_ENV} to a writable folder"
        ) from None


@contextlib.contextmanager
def model_lock(name: str) -> Iterator[None]:
    """Hold an exclusive OS lock on ``weights/<name>.lock`` (a second process pulling the same model waits).

    The lock is released by the OS if the process dies, so a crash never leaves the cache locked.
    """
    folder = weights_home() / "weights"
    _make_folder(folder)
    try:
        held = lock_file(folder / f"{name}.lock")
    except OSError as error:
        raise WeightsError(
            f"{folder / (name + '.lock')}: cannot take the lock ({error.strerror or error}); "
            f"the weights cache must be writable to add a model (set {HOME_ENV} to a writable folder)"
        ) from None
    with held:
        yield


def utc_timestamp() -> str:
    """Now, in UTC, to the second (ISO 8601): the date provenance records."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _pins_path() -> Path:
    return weights_home() / "pins.json"


def read_pins() -> dict[str, dict[str, Any]]:
    """``{file name: {"sha256", "recorded", "url"}}`` for files pinned on first download."""
    path = _pins_path()
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise WeightsError(
            f"{path}: the recorded checksums are unreadable ({error}); delete the file to record them again"
        ) from None
    return data if isinstance(data, dict) else {}


def pins_path() -> Path:
    """Where the recorded checksums live (named in errors, so a user can remove a wrong one)."""
    return _pins_path()


def record_pin(file_name: str, sha256: str, url: str) -> dict[str, Any]:
    """Record ``sha256`` as the checksum of ``file_name``; returns the pin.

    Called only once the file has converted and loaded: a refused file leaves no record that
    would later refuse the genuine one. pins.json is shared by every model, so its
    read-modify-write holds a lock of its own.
    """
    from medswin.files import atomic_output

    pin = {"sha256": sha256, "recorded": utc_timestamp(), "url": url}
    with model_lock(".pins"):
        pins = read_pins()
        pins[file_name] = pin
        with atomic_output(_pins_path()) as temporary:
            temporary.write_text(json.dumps(pins, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return pin
