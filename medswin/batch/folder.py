"""The output folder of a batch: never one that holds inputs, one run at a time, a hidden work area.

* :func:`check_output_folder` refuses, before anything is written, an output folder that is an
  input, holds an input where medswin writes (directly in it, where ``<case>.nii.gz`` could replace
  it and ``--overwrite`` delete it, or in its work area) or lies inside a case's own folder (a DICOM
  study would read the outputs back as slices). Paths are compared after resolving symbolic links.
  An output folder *beside* the cases inside a folder of cases (``-i data -o data/out``) is fine:
  discovery skips it; so are inputs in a sub-folder of the output folder (medswin never writes there).
* :class:`OutputLock` holds ``OUT/.medswin/lock-<i>of<n>`` (pid, host, shard) under an exclusive
  OS lock (:func:`medswin.files.lock_file`, not waited for) for the run. The kernel drops the lock
  when its process dies, so a lock left by a killed run is stale and taken over; a live one is
  refused naming its pid and host. Shards of one
  split (``0/2`` and ``1/2``, e.g. torchrun ranks) write disjoint cases and run together; any other
  combination (two plain runs, a plain run and a shard, splits ``i/2`` and ``j/3``) is refused.
* ``OUT/.medswin/work-<i>of<n>/`` is the run's scratch folder (e.g. extracted DICOM zips, which
  hold patient data): emptied when the lock is taken, removed when it is released, and removed by
  a later run when its holder died.
* :func:`folder_key` is a random key kept in ``OUT/.medswin/key`` (0600): pseudonyms (hashed case
  names, de-identified UIDs) are HMACs under it, the same on every run into the folder and not
  computable from a guessed name without it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import socket
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from medswin.errors import MedSwinError
from medswin.files import LockedFile, lock_file

__all__ = ["WORK_AREA", "check_output_folder", "folder_key", "FolderBusyError", "OutputLock"]

log = logging.getLogger(__name__)

#: the hidden folder inside an output folder that belongs to medswin runs.
WORK_AREA = ".medswin"


class FolderBusyError(MedSwinError):
    """Another live run holds the output folder: waiting is the fix (a DICOM node queues, never drops)."""


def folder_key(output_dir: Path) -> bytes:
    """The output folder's pseudonym key (32 random bytes), made on first use and kept."""
    area = Path(output_dir) / WORK_AREA
    path = area / "key"
    area.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_bytes()
        if len(key) != 32:
            raise MedSwinError(
                f"{path}: not a medswin folder key (32 bytes); remove it to start over"
            ) from None
        return key
    key = secrets.token_bytes(32)
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(key)
    return key


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _where_medswin_writes(path: Path, output_dir: Path) -> bool:
    """Whether ``path`` is the output folder, lies directly in it or lies in its work area."""
    return path == output_dir or path.parent == output_dir or _inside(path, output_dir / WORK_AREA)


def _resolved(path: Path) -> Path:
    """``path`` with symbolic links resolved; :class:`MedSwinError` for a link loop."""
    try:
        return Path(path).expanduser().resolve()
    except (RuntimeError, OSError) as error:  # Python < 3.13 raises RuntimeError for a loop
        raise MedSwinError(f"{path}: a symbolic link loop, not a folder or file ({error})") from None


def check_output_folder(output_dir: Path, inputs: Iterable[Path]) -> None:
    """Raise :class:`MedSwinError` when ``output_dir`` is, holds, or lies inside one of ``inputs``.

    Args:
        output_dir: the batch's output folder (need not exist yet).
        inputs: every file or folder a case reads (its channel paths).
    """
    target = _resolved(output_dir)
    for source in inputs:
        resolved = _resolved(source)
        if _where_medswin_writes(resolved, target):
            where = "is" if resolved == target else "holds"
            raise MedSwinError(
                f"{output_dir}: the output folder {where} the input {source}; medswin would replace or "
                "delete inputs there; choose an output folder outside the inputs"
            )
        if _inside(target, resolved):
            raise MedSwinError(
                f"{output_dir}: the output folder lies inside the input {source}, whose files are read as "
                "one case; choose an output folder outside it"
            )


def _spec(shard: tuple[int, int]) -> str:
    return f"{shard[0]}of{shard[1]}"


def _parse_spec(text: str) -> tuple[int, int] | None:
    index, _, count = text.partition("of")
    return (int(index), int(count)) if index.isdigit() and count.isdigit() else None


def _compatible(mine: tuple[int, int], other: tuple[int, int]) -> bool:
    """Two runs may share a folder only as different shards of the same split (disjoint cases)."""
    return mine[1] == other[1] and mine[0] != other[0]


def _holder(path: Path) -> str:
    """Who a lock file names, for messages: ``pid N on host H`` (or what is known of it)."""
    try:
        facts = json.loads(path.read_text(encoding="utf-8"))
        return f"pid {facts['pid']} on host {facts['host']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another medswin run"


class OutputLock:
    """Hold an output folder (one shard of it) for one run; a context manager.

    Raises :class:`MedSwinError` on entry when another live run holds the folder in a way that
    overlaps this shard, or when the folder cannot be written.
    """

    def __init__(self, output_dir: Path, shard: tuple[int, int] = (0, 1)) -> None:
        self.output_dir = Path(output_dir)
        self.shard = shard
        self.area = self.output_dir / WORK_AREA
        self.path = self.area / f"lock-{_spec(shard)}"
        self.work = self.area / f"work-{_spec(shard)}"
        self._held: LockedFile | None = None

    def __enter__(self) -> OutputLock:
        try:
            self._acquire()
        except OSError as error:
            self.release()
            raise MedSwinError(
                f"{self.output_dir}: cannot write in the output folder ({error.strerror or error})"
            ) from error
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.release()

    def _acquire(self) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        held = lock_file(self.path, blocking=False)
        if held is None:
            raise FolderBusyError(
                f"{self.output_dir}: in use by {_holder(self.path)} (shard {self.shard[0]}/{self.shard[1]}); "
                f"wait for it to finish, or choose another output folder"
            )
        self._held = held
        self._take_over(held)
        for other in sorted(self.area.glob("lock-*")):
            spec = _parse_spec(other.name.removeprefix("lock-"))
            if other == self.path or spec is None:
                continue
            if self._live(other, spec) and not _compatible(self.shard, spec):
                holder = _holder(other)
                self.release()
                raise FolderBusyError(
                    f"{self.output_dir}: in use by {holder} (shard {spec[0]}/{spec[1]}), whose cases overlap "
                    f"this run's (shard {self.shard[0]}/{self.shard[1]}); wait for it to finish"
                )
        shutil.rmtree(self.work, ignore_errors=True)  # a dead run of this shard left it
        self.work.mkdir()

    def _take_over(self, held: LockedFile) -> None:
        """Write this run's pid and host into the lock, noting a stale holder it replaces."""
        if held.content():
            log.info(
                "%s: taking over a stale lock (%s is no longer running)", self.output_dir, _holder(self.path)
            )
        facts = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "shard": f"{self.shard[0]}/{self.shard[1]}",
        }
        held.note(json.dumps(facts) + "\n")

    def _live(self, other: Path, spec: tuple[int, int]) -> bool:
        """Whether another shard's lock is held; a stale one is removed with its work folder."""
        held = lock_file(other, blocking=False)
        if held is None:
            return True
        try:
            shutil.rmtree(self.area / f"work-{_spec(spec)}", ignore_errors=True)
        finally:
            held.release(remove=True)
        return False

    def release(self) -> None:
        """Remove the work folder and the lock file, then the work area when no other run uses it."""
        if self._held is None:
            return
        shutil.rmtree(self.work, ignore_errors=True)
        self._held.release(remove=True)
        self._held = None
        with contextlib.suppress(OSError):  # another shard still works here
            self.area.rmdir()
