"""Download one published file: resume, proxy, mirror, checksum; stdlib ``urllib`` only.

A download goes to ``downloads/<file>.part`` and continues from where it stopped (HTTP ``Range``)
when the connection drops, within one pull or at the next one. Only a file whose checksum matches
(the published one, or the SHA-256 recorded at the first download) leaves this module; a mismatch
deletes the file. Proxies come from the standard ``HTTP(S)_PROXY`` / ``NO_PROXY`` variables
(urllib's default opener reads them).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from medswin.errors import WeightsError
from medswin.weights.cache import MIRROR_ENV, downloads_folder
from medswin.weights.registry import PublishedFile

__all__ = ["Download", "ProgressFn", "download_file", "file_checksums", "candidate_urls", "console_progress"]

log = logging.getLogger(__name__)

#: ``progress(bytes done, total bytes or None)``
ProgressFn = Callable[[int, "int | None"], None]
_CHUNK = 1 << 20
_ATTEMPTS = 4  # per URL; each one resumes where the last stopped
_TIMEOUT_S = 60


@dataclass(frozen=True)
class Download:
    """A complete, not yet verified download."""

    path: Path
    url: str
    sha256: str
    md5: str


class _Truncated(Exception):
    def __init__(self, done: int, total: int | None) -> None:
        super().__init__(
            f"connection closed after {done:,} of {total:,} bytes" if total else "connection closed"
        )
        self.done = done


def candidate_urls(published: PublishedFile) -> list[str]:
    """The URLs to try: the mirror's ``BASE/<published name>`` when ``MEDSWIN_MIRROR`` is set, else the published ones."""
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    if mirror:
        return [f"{mirror.rstrip('/')}/{urllib.parse.quote(published.name)}"]
    return list(published.urls)


def file_checksums(path: Path) -> tuple[str, str]:
    """``(sha256, md5)`` of ``path`` in one pass."""
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            sha.update(block)
            md5.update(block)
    return sha.hexdigest(), md5.hexdigest()


def _total_from(response: http.client.HTTPResponse, offset: int) -> int | None:
    if response.status == 206:
        text = response.headers.get("Content-Range", "")
        tail = text.rsplit("/", 1)[-1]
        return int(tail) if tail.isdigit() else None
    length = response.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def _transfer(url: str, part: Path, progress: ProgressFn | None) -> None:
    """Append the rest of ``url`` to ``part`` (from scratch if the server ignores ``Range``)."""
    from medswin import __version__

    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": f"medswin/{__version__}"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.build_opener().open(request, timeout=_TIMEOUT_S)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # the partial file is not a prefix we can extend
            part.unlink()
            return _transfer(url, part, progress)
        raise
    with response:
        if offset and response.status != 206:
            offset = 0
        total = _total_from(response, offset)
        done = offset
        with part.open("ab" if offset else "wb") as out:
            try:
                while True:
                    chunk = response.read(_CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
            except (http.client.IncompleteRead, ConnectionError, TimeoutError) as error:
                if isinstance(error, http.client.IncompleteRead):
                    out.write(error.partial)
                    done += len(error.partial)
                raise _Truncated(done, total) from None
        if total is not None and done < total:
            raise _Truncated(done, total)


def _reason(error: BaseException) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        return f"cannot connect ({getattr(error.reason, 'strerror', None) or error.reason})"
    return str(error) or type(error).__name__


def download_file(published: PublishedFile, *, progress: ProgressFn | None = None) -> Download:
    """Fetch ``published`` into ``downloads/`` (resuming a ``.part`` file) and return it with its checksums.

    Tries each candidate URL in turn; a dropped connection resumes up to a few times per URL.
    Raises :class:`WeightsError` naming every URL tried and why it failed. The checksum is not
    checked here: :func:`medswin.weights.pull` checks it against the registry or the first download.
    """
    folder = downloads_folder()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise WeightsError(f"{folder}: cannot create the download folder ({error.strerror})") from None
    part = folder / f"{published.name}.part"
    failures = []
    for url in candidate_urls(published):
        interrupted = ""
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                _transfer(url, part, progress)
            except _Truncated as error:
                log.warning("%s: %s (attempt %d of %d); resuming", url, error, attempt, _ATTEMPTS)
                interrupted = f"{url}: transfer interrupted, {error}"
                continue
            except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
                failures.append(f"{url}: {_reason(error)}")
                break
            sha256, md5 = file_checksums(part)
            return Download(part, url, sha256, md5)
        else:
            failures.append(f"{interrupted} ({_ATTEMPTS} attempts; run again to resume)")
    raise WeightsError(f"could not download {published.name}: " + "; ".join(failures))


@contextlib.contextmanager
def console_progress(description: str, *, enabled: bool = True) -> Iterator[ProgressFn]:
    """A transient download bar on stderr (bytes, speed, time left), as a :data:`ProgressFn`."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=True, disable=not enabled, console=Console(stderr=True)) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield update
