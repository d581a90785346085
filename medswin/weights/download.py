"""Download one published file: resume, proxy, mirror, timeouts, retries; stdlib ``urllib`` only.

A download goes to ``downloads/<file>.part`` and continues from where it stopped (HTTP ``Range``)
when the connection drops, within one pull or at the next one. A partial file is resumed only from
the URL that began it and only while the server still describes the same file: the ``ETag`` or
``Last-Modified`` and the size recorded beside it (``<file>.part.json``) must match, otherwise the
download starts over (resuming someone else's bytes after a junk prefix would make a file no one
published). A server that stalls (less than :data:`~medswin.weights.limits.MIN_RATE` bytes/s over
the read timeout) or drops the connection is retried with back-off. Proxies come from the standard
``HTTP(S)_PROXY`` / ``NO_PROXY`` variables (urllib's default opener reads them). The checksum is
checked by the caller.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import logging
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from medswin.errors import WeightsError
from medswin.weights.cache import MIRROR_ENV, downloads_folder
from medswin.weights.limits import MIN_RATE, READ_TIMEOUT_ENV, Limits, limits
from medswin.weights.registry import PublishedFile

__all__ = ["Download", "ProgressFn", "download_file", "file_checksums", "candidate_urls", "console_progress"]

log = logging.getLogger(__name__)

#: ``progress(bytes done, total bytes or None)``
ProgressFn = Callable[[int, "int | None"], None]
_CHUNK = 1 << 20
_READ = 1 << 16  # read1() returns what has arrived, so the stall check runs while a server drips
_TRANSIENT_HTTP = (408, 429, 500, 502, 503, 504)


@dataclass(frozen=True)
class Download:
    """A complete, not yet verified download."""

    path: Path
    url: str
    sha256: str
    md5: str


@dataclass(frozen=True)
class _PartState:
    """What the server said about the file when a ``.part`` began: a resume must match it."""

    url: str
    etag: str | None
    last_modified: str | None
    total: int | None
    session: str  # the download_file call that wrote it: a file without validators resumes only there


class _Truncated(Exception):
    """The transfer stopped early (dropped, timed out, stalled); the ``.part`` file can be resumed."""

    def __init__(self, done: int, total: int | None, why: str = "connection closed") -> None:
        super().__init__(
            f"{why} after {done:,} of {total:,} bytes" if total else f"{why} after {done:,} bytes"
        )
        self.done = done


class _Refused(Exception):
    """This URL serves something that is not the published file; trying it again will not help."""


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


def _state_path(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def _read_state(part: Path) -> _PartState | None:
    try:
        return _PartState(**json.loads(_state_path(part).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def _write_state(part: Path, state: _PartState) -> None:
    from medswin.files import atomic_output

    with atomic_output(_state_path(part)) as temporary:
        temporary.write_text(json.dumps(asdict(state)), encoding="utf-8")


def discard_partial(part: Path) -> None:
    """Delete a partial download and what was recorded about it."""
    part.unlink(missing_ok=True)
    _state_path(part).unlink(missing_ok=True)


def _resumable(part: Path, url: str, session: str) -> _PartState | None:
    """The state of ``part`` when it may be resumed from ``url``; otherwise deletes it and returns ``None``."""
    if not part.is_file() or part.stat().st_size == 0:
        discard_partial(part)
        return None
    state = _read_state(part)
    if state is None or state.url != url:
        why = "nothing recorded about it" if state is None else f"begun from {state.url}"
        log.info("%s: not resuming the partial download (%s); starting over", part.name, why)
    elif state.etag or state.last_modified or state.session == session:
        return state
    else:
        log.info("%s: the server gave no ETag or Last-Modified; starting over", part.name)
    discard_partial(part)
    return None


def _total_from(response: http.client.HTTPResponse) -> int | None:
    if response.status == 206:
        text = response.headers.get("Content-Range", "")
        tail = text.rsplit("/", 1)[-1]
        return int(tail) if tail.isdigit() else None
    length = response.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def _same_file(state: _PartState, response: http.client.HTTPResponse, total: int | None) -> bool:
    """Does a 206 answer describe the file the partial download began with?"""
    etag, modified = response.headers.get("ETag"), response.headers.get("Last-Modified")
    if state.etag and etag != state.etag:
        return False
    if state.last_modified and modified != state.last_modified:
        return False
    return total == state.total


def _check_total(total: int | None, published: PublishedFile, limit: Limits) -> None:
    if total is None:
        return
    if published.size is not None and total != published.size:
        raise _Refused(f"the server announces {total:,} bytes, but {published.size:,} are published")
    if total > limit.max_bytes:
        raise _Refused(f"the server announces {total:,} bytes, more than the {limit.max_text}")


def _open(url: str, offset: int, state: _PartState | None, limit: Limits) -> http.client.HTTPResponse:
    from medswin import __version__

    request = urllib.request.Request(url, headers={"User-Agent": f"medswin/{__version__}"})
    if offset and state is not None:
        request.add_header("Range", f"bytes={offset}-")
        # the server sends the whole file instead when it changed since the partial one began
        validator = state.etag if state.etag and not state.etag.startswith("W/") else state.last_modified
        if validator:
            request.add_header("If-Range", validator)
    timeout = min(limit.connect_timeout, limit.read_timeout)
    return urllib.request.build_opener().open(request, timeout=timeout)


def _transfer(
    url: str, part: Path, published: PublishedFile, session: str, limit: Limits, progress: ProgressFn | None
) -> None:
    """Append the rest of ``url`` to ``part``, or start it over when the partial file cannot be resumed."""
    state = _resumable(part, url, session)
    offset = part.stat().st_size if state is not None else 0
    try:
        response = _open(url, offset, state, limit)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # the partial file is not a prefix we can extend
            discard_partial(part)
            return _transfer(url, part, published, session, limit, progress)
        raise
    total = _total_from(response)
    if offset and response.status == 206 and state is not None and not _same_file(state, response, total):
        # the server ignored If-Range: its 206 describes another file than the partial one's
        response.close()
        log.warning("%s: the server's file changed since the partial download began; starting over", url)
        discard_partial(part)
        return _transfer(url, part, published, session, limit, progress)
    with response:
        if offset and response.status != 206:
            offset = 0  # a whole file (the server ignores Range, or If-Range said it changed)
        _check_total(total, published, limit)
        if not offset:
            headers = response.headers
            _write_state(
                part, _PartState(url, headers.get("ETag"), headers.get("Last-Modified"), total, session)
            )
        _copy_body(response, part, offset, total, limit, progress)


def _copy_body(
    response: http.client.HTTPResponse,
    part: Path,
    offset: int,
    total: int | None,
    limit: Limits,
    progress: ProgressFn | None,
) -> None:
    done = offset
    window_start, window_bytes = time.monotonic(), 0
    with part.open("ab" if offset else "wb") as out:
        try:
            while chunk := response.read1(_READ):
                out.write(chunk)
                done += len(chunk)
                if done > limit.max_bytes:
                    raise _Refused(f"the server sent more than the {limit.max_text}")
                if progress is not None:
                    progress(done, total)
                window_bytes += len(chunk)
                elapsed = time.monotonic() - window_start
                if elapsed >= limit.read_timeout:
                    if window_bytes < MIN_RATE * elapsed:
                        raise _Truncated(
                            done,
                            total,
                            f"stalled: {window_bytes:,} bytes in {elapsed:.0f} s, "
                            f"less than {MIN_RATE:,} bytes/s ({READ_TIMEOUT_ENV}={limit.read_timeout:g})",
                        )
                    window_start, window_bytes = time.monotonic(), 0
        except (http.client.IncompleteRead, ConnectionError) as error:
            if isinstance(error, http.client.IncompleteRead):
                out.write(error.partial)
                done += len(error.partial)
            raise _Truncated(done, total) from None
        except TimeoutError:
            raise _Truncated(
                done, total, f"no data for {min(limit.connect_timeout, limit.read_timeout):g} s"
            ) from None
    if total is not None and done < total:
        raise _Truncated(done, total)


def _reason(error: BaseException) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        if isinstance(error.reason, (TimeoutError, socket.timeout)):
            return "no answer (timed out)"
        return f"cannot connect ({getattr(error.reason, 'strerror', None) or error.reason})"
    if isinstance(error, TimeoutError):
        return "no answer (timed out)"
    return str(error) or type(error).__name__


def _transient(error: BaseException) -> bool:
    """A failure worth retrying after a pause: a timeout, a dropped connection, an overloaded server."""
    if isinstance(error, urllib.error.HTTPError):
        return error.code in _TRANSIENT_HTTP
    if isinstance(error, urllib.error.URLError):
        return isinstance(error.reason, (TimeoutError, ConnectionResetError, ConnectionAbortedError))
    return isinstance(error, (TimeoutError, ConnectionResetError, http.client.HTTPException))


def download_file(published: PublishedFile, *, progress: ProgressFn | None = None) -> Download:
    """Fetch ``published`` into ``downloads/`` (resuming a ``.part`` file) and return it with its checksums.

    Tries each candidate URL in turn; a transient failure (timeout, stall, dropped connection,
    HTTP 5xx) is retried after a growing pause, resuming the partial file. Raises
    :class:`WeightsError` naming every URL tried and why it failed. The checksum is not checked
    here: :func:`medswin.weights.pull` checks it against the registry or the recorded one.
    """
    limit = limits()
    folder = downloads_folder()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise WeightsError(f"{folder}: cannot create the download folder ({error.strerror})") from None
    part = folder / f"{published.name}.part"
    session = uuid.uuid4().hex
    failures = []
    for url in candidate_urls(published):
        for attempt in range(1, limit.attempts + 1):
            if attempt > 1:
                time.sleep(limit.retry_delay(attempt - 1))
            try:
                _transfer(url, part, published, session, limit, progress)
            except _Refused as error:
                discard_partial(part)
                failures.append(f"{url}: {error}")
                break
            except (_Truncated, urllib.error.URLError, http.client.HTTPException, OSError) as error:
                reason = _reason(error)
                if not isinstance(error, _Truncated) and not _transient(error):
                    failures.append(f"{url}: {reason}")
                    break
                log.warning("%s: %s (attempt %d of %d)", url, reason, attempt, limit.attempts)
                if attempt == limit.attempts:
                    kept = "; run again to resume" if part.is_file() else ""
                    failures.append(f"{url}: {reason} ({limit.attempts} attempts{kept})")
                continue
            _state_path(part).unlink(missing_ok=True)
            sha256, md5 = file_checksums(part)
            return Download(part, url, sha256, md5)
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
