"""Files on disk: atomic writes, exclusive locks and the one temporary-name pattern.

Every package writes outputs the same way, so a crash never leaves a half-written file under a
final name and clean-up recognises what a crashed writer left:

* a temporary beside its target is named ``.<target name>.<random>.partial`` (:func:`temp_name`,
  :func:`staging_folder`); :func:`is_temp_name` is the one predicate that recognises it;
* :func:`atomic_path` / :func:`write_atomic` write to such a name in the target's folder and
  ``os.replace`` it over the target (optionally ``fsync``-ing file and folder first, for data
  someone else has been told is safe, e.g. an acknowledged DICOM instance);
  :func:`atomic_output` does the same for a library writer that may make several files (``.mhd``
  plus ``.zraw``) in a private :func:`staging_folder`, and refuses an empty result;
* :func:`lock_file` / :func:`exclusive_lock` hold an OS lock on a file through ``filelock``
  (``flock`` on Linux and macOS, ``LockFileEx`` on Windows), so nothing here imports ``fcntl``
  and the whole package imports on every platform. The kernel drops the lock when its process
  dies: a lock left by a killed run is never stale.

This module sits below every package (it imports only the standard library, ``filelock`` and
:mod:`medswin.errors`), so any of them may use it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from medswin.errors import ImageWriteError, MedSwinError

__all__ = [
    "TEMP_SUFFIX",
    "temp_name",
    "is_temp_name",
    "staging_folder",
    "atomic_path",
    "atomic_output",
    "write_atomic",
    "fsync_folder",
    "write_failure",
    "system_cause",
    "LockBusyError",
    "LockedFile",
    "lock_file",
    "exclusive_lock",
]

#: what every temporary name ends with (files and staging folders alike).
TEMP_SUFFIX = ".partial"


def temp_name(path: str | Path) -> Path:
    """A fresh temporary name for ``path`` in its own folder: ``.<name>.<random>.partial``.

    The same folder, so the final ``os.replace`` is a rename on one filesystem (atomic); hidden,
    so listings and case discovery skip it; random, so two writers never share one.
    """
    path = Path(path)
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}{TEMP_SUFFIX}")


def is_temp_name(name: str | Path, of: str | None = None) -> bool:
    """Whether ``name`` is a temporary made by this module (of the target named ``of``, when given)."""
    name = Path(name).name
    prefix = f".{of}." if of is not None else "."
    return (
        name.startswith(prefix) and name.endswith(TEMP_SUFFIX) and len(name) > len(prefix) + len(TEMP_SUFFIX)
    )


def system_cause(error: BaseException) -> OSError | None:
    """The operating system's error under ``error``: pydicom re-raises a failed write as a new
    ``OSError`` whose text is a whole traceback, the original (with its errno) as its cause."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno is not None:
            return current
        current = current.__cause__ or current.__context__
    return None


def write_failure(path: str | Path, error: BaseException) -> str:
    """One line saying why writing ``path`` failed, the cause first when the system gave one
    (``no space left on device writing /out/case.dcm; nothing was written``)."""
    cause = system_cause(error)
    if cause is not None:
        what = os.strerror(cause.errno) if cause.errno is not None else str(cause)
        return f"{what[:1].lower()}{what[1:]} writing {path}; nothing was written"
    text = next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
    return f"{path}: could not write ({text}); nothing was written"


@contextlib.contextmanager
def staging_folder(path: str | Path) -> Iterator[Path]:
    """A private temporary folder beside ``path`` (``.<name>.<random>.partial``), removed afterwards.

    For writers that make several files at once (``.mhd`` + ``.zraw``, an ONNX file and its
    weights): they write into the folder, the caller renames each file into place.
    Raises :class:`ImageWriteError` when the folder cannot be made.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent))
    except OSError as error:
        raise ImageWriteError(f"{path}: cannot write in {path.parent} ({error.strerror or error})") from error
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path with ``path``'s name; on success move what was written there into place.

    Every file the writer creates in the staging folder (e.g. ``.mhd`` plus its ``.zraw``) is
    moved, data files first and ``path`` itself last. Empty outputs are refused. Raises
    :class:`ImageWriteError` (one line, cause first) when writing fails; the target stays as it was.
    """
    path = Path(path)
    if path.is_dir():
        raise ImageWriteError(f"{path}: is a folder; give a file name such as {path / 'image.nii.gz'}")
    with staging_folder(path) as staging:
        temporary = staging / path.name
        try:
            yield temporary
            produced = sorted(staging.iterdir(), key=lambda p: p.name == path.name)
            if not temporary.exists():
                raise ImageWriteError(f"{path}: the writer produced no file")
            for item in produced:
                if item.stat().st_size == 0:
                    raise ImageWriteError(
                        f"{path}: the writer produced an empty file {item.name}; nothing was written"
                    )
            for item in produced:
                os.replace(item, path.parent / item.name)
        except OSError as error:
            raise ImageWriteError(write_failure(path, error)) from error


def fsync_folder(folder: str | Path) -> None:
    """Make a rename or a new file in ``folder`` durable (its entry survives a power cut).

    A no-op on Windows, which cannot open a folder as a file (NTFS journals its metadata).
    """
    if os.name == "nt":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def atomic_path(path: str | Path, *, fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary name beside ``path``; when the block succeeds, move that file over ``path``.

    Raises OSError as the system gave it (the temporary is removed; ``path`` is as it was). The
    block must create the file. With ``fsync``, the file and then the folder are flushed to disk
    around the rename, so the new content survives a power cut once this returns.
    """
    path = Path(path)
    temporary = temp_name(path)
    try:
        yield temporary
        if fsync:
            with open(temporary, "rb+") as stream:
                os.fsync(stream.fileno())
        os.replace(temporary, path)
        if fsync:
            fsync_folder(path.parent)
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)


def write_atomic(path: str | Path, data: str | bytes, *, fsync: bool = False) -> Path:
    """Write ``data`` (text as UTF-8, newlines as given) to ``path`` atomically; returns ``path``.

    Raises :class:`ImageWriteError` with one line naming the cause and the file when it cannot.
    """
    path = Path(path)
    if path.is_dir():
        raise ImageWriteError(f"{path}: is a folder; give a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, fsync=fsync) as temporary:
            if isinstance(data, str):
                temporary.write_text(data, encoding="utf-8", newline="")
            else:
                temporary.write_bytes(data)
    except OSError as error:
        raise ImageWriteError(write_failure(path, error)) from error
    return path


class LockBusyError(MedSwinError):
    """Another process holds the lock (raised only when not waiting for it)."""


class LockedFile:
    """An open lock file held under an exclusive OS lock; :meth:`release` (or leaving a ``with``) frees it.

    The descriptor stays usable, e.g. to :meth:`note` who holds the lock for messages.
    """

    def __init__(self, path: Path, descriptor: int) -> None:
        self.path = path
        self.descriptor: int | None = descriptor

    def content(self) -> str:
        """What the lock file holds (a previous holder's :meth:`note`, or empty)."""
        assert self.descriptor is not None, "the lock was released"
        os.lseek(self.descriptor, 0, os.SEEK_SET)
        return os.read(self.descriptor, 65536).decode("utf-8", errors="replace")

    def note(self, text: str) -> None:
        """Replace the lock file's content with ``text`` (e.g. the holder's pid and host)."""
        assert self.descriptor is not None, "the lock was released"
        os.ftruncate(self.descriptor, 0)
        os.lseek(self.descriptor, 0, os.SEEK_SET)
        os.write(self.descriptor, text.encode("utf-8"))

    def release(self, *, remove: bool = False) -> None:
        """Free the lock (closing the file); with ``remove``, delete the lock file first.

        Removing before closing means no other process can lock the old inode after we let go and
        then lose it to the deletion; a process that opened the file meanwhile sees the inode is
        gone from the folder and tries again (:func:`lock_file`). Windows cannot delete an open
        file, so there the file is deleted after closing, when nobody else holds it.
        """
        if self.descriptor is None:
            return
        descriptor, self.descriptor = self.descriptor, None
        removed = False
        if remove:
            try:
                self.path.unlink(missing_ok=True)
                removed = True
            except PermissionError:  # Windows: open files cannot be deleted
                pass
        os.close(descriptor)  # closing drops the lock
        if remove and not removed:
            with contextlib.suppress(OSError):
                self.path.unlink(missing_ok=True)

    def __enter__(self) -> LockedFile:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.release()


def lock_file(path: str | Path, *, blocking: bool = True) -> LockedFile | None:
    """Open ``path`` (created, with its folder, when missing) and lock it exclusively; None when not
    ``blocking`` and another process holds it.

    A lock file can be deleted by its releasing holder between our open and our lock; we would then
    hold a lock on a file nobody else can find, so the inode is compared and the attempt repeated.
    Raises OSError when the file cannot be opened or locked.
    """
    from filelock import lock_descriptor

    path = Path(path)
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0)
    while True:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, flags, 0o644)
        except FileNotFoundError:  # the folder was removed meanwhile (its last user left)
            continue
        try:
            locked = lock_descriptor(descriptor, blocking=blocking)
        except BaseException:
            os.close(descriptor)
            raise
        if not locked:
            os.close(descriptor)
            return None
        try:
            same = os.path.samestat(os.stat(path), os.fstat(descriptor))
        except FileNotFoundError:
            same = False
        if same:
            return LockedFile(path, descriptor)
        os.close(descriptor)


@contextlib.contextmanager
def exclusive_lock(path: str | Path, *, blocking: bool = True, remove: bool = False) -> Iterator[LockedFile]:
    """Hold an exclusive lock on ``path`` for the block (waiting for it, or not).

    Raises :class:`LockBusyError` when ``blocking`` is False and another process holds it; with
    ``remove``, the lock file is deleted when the block ends.
    """
    held = lock_file(path, blocking=blocking)
    if held is None:
        raise LockBusyError(f"{path}: locked by another process")
    try:
        yield held
    finally:
        held.release(remove=remove)
