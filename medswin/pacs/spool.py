"""The listener's durable queue: received instances on disk before they are acknowledged.

A C-STORE SCP that has answered success owns the instance (the sender may delete its copy), so
every received instance is written and ``fsync``'d, file and folder, before success is returned,
and a study leaves the queue only when its outcome is written:

* ``OUT/.incoming/<StudyInstanceUID>/<SOPInstanceUID>.dcm``: the queue. A study waits here while it
  arrives, while it waits for its quiet period or for a busy output folder, and while it is segmented.
  It survives SIGTERM, ``kill -9`` and reboots: the next start finds it and segments it.
* ``OUT/.failed/<StudyInstanceUID>/``: studies that could not be segmented (or whose SEG could not be
  sent), kept with the same files and a ``failure.json`` saying why (no patient data in it: UIDs and
  reasons only). :meth:`StudySpool.retry_failed` (``medswin listen --retry-failed``) puts them back in
  the queue.

A study that was segmented (every series recorded, every SEG sent) is removed from disk.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from medswin.files import atomic_path, fsync_folder, is_temp_name, write_atomic

__all__ = ["StudySpool", "QueuedStudy", "INCOMING", "FAILED"]

log = logging.getLogger(__name__)

#: the queue and the failed studies, inside the output folder.
INCOMING = ".incoming"
FAILED = ".failed"
_FAILURE = "failure.json"


@dataclass(frozen=True)
class QueuedStudy:
    """A study in the queue: its folder, its instance count and when its newest instance arrived."""

    study_uid: str
    folder: Path
    instances: int
    last_arrival: float  # seconds since the epoch (file modification time)


def _instances(folder: Path) -> list[Path]:
    return [p for p in folder.glob("*.dcm") if not p.name.startswith(".")]  # hidden: never an instance


class StudySpool:
    """The queue and the failed studies of one output folder (see the module docstring)."""

    def __init__(self, output_dir: Path) -> None:
        self.output_dir = Path(output_dir)
        self.incoming = self.output_dir / INCOMING
        self.failed = self.output_dir / FAILED

    def store(self, study_uid: str, instance_uid: str, data: bytes) -> Path:
        """Write one instance durably (temporary name, fsync, rename, fsync of the folder); OSError on failure."""
        new_folder = not (self.incoming / study_uid).is_dir()
        folder = self.incoming / study_uid
        folder.mkdir(parents=True, exist_ok=True)
        if new_folder:
            fsync_folder(self.incoming)
        target = folder / f"{instance_uid}.dcm"
        with atomic_path(target, fsync=True) as partial:
            partial.write_bytes(data)
        return target

    def queued(self) -> list[QueuedStudy]:
        """Studies in the queue, oldest newest-arrival first; unacknowledged partial files are removed."""
        studies = []
        for folder in sorted(self.incoming.glob("*")) if self.incoming.is_dir() else []:
            if not folder.is_dir():
                continue
            for partial in filter(is_temp_name, folder.iterdir()):  # never acknowledged
                partial.unlink(missing_ok=True)
            files = _instances(folder)
            if not files:
                shutil.rmtree(folder, ignore_errors=True)
                continue
            last = max(p.stat().st_mtime for p in files)
            studies.append(QueuedStudy(folder.name, folder, len(files), last))
        return sorted(studies, key=lambda s: s.last_arrival)

    def instances(self, study_uid: str) -> list[Path]:
        """The study's acknowledged instances now in the queue."""
        folder = self.incoming / study_uid
        return _instances(folder) if folder.is_dir() else []

    def done(self, study_uid: str, instances: list[Path]) -> bool:
        """The study's outcome is written: remove the ``instances`` it was made from.

        Instances that arrived while it was segmented stay (the study is queued again for them);
        returns whether the study left the queue.
        """
        for path in instances:
            path.unlink(missing_ok=True)
        folder = self.incoming / study_uid
        if self.instances(study_uid):
            return False
        shutil.rmtree(folder, ignore_errors=True)
        return True

    def fail(self, study_uid: str, reason: str, cases: dict[str, str] | None = None) -> Path:
        """Move the study to the failed folder with ``failure.json`` (``reason``, per-case reasons)."""
        source = self.incoming / study_uid
        target = self.failed / study_uid
        self.failed.mkdir(parents=True, exist_ok=True)
        if target.exists():  # failed before, retried, failed again: the newest files win
            for path in _instances(source):
                os.replace(path, target / path.name)
            shutil.rmtree(source, ignore_errors=True)
        else:
            os.replace(source, target)
        fsync_folder(self.failed)
        failure = {
            "study": study_uid,
            "reason": reason,
            "cases": cases or {},
            "failed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "instances": len(_instances(target)),
            "retry": "medswin listen ... --retry-failed (or move the folder back into .incoming/)",
        }
        write_atomic(target / _FAILURE, json.dumps(failure, indent=2) + "\n")
        return target

    def failures(self) -> list[dict]:
        """What ``failure.json`` says of each failed study (oldest first)."""
        found = []
        for path in sorted(self.failed.glob(f"*/{_FAILURE}")) if self.failed.is_dir() else []:
            try:
                found.append(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                found.append({"study": path.parent.name, "reason": "failure.json unreadable"})
        return found

    def retry_failed(self) -> list[str]:
        """Put every failed study back in the queue (its instances; ``failure.json`` is dropped)."""
        moved = []
        for folder in sorted(self.failed.glob("*")) if self.failed.is_dir() else []:
            if not folder.is_dir():
                continue
            (folder / _FAILURE).unlink(missing_ok=True)
            target = self.incoming / folder.name
            target.mkdir(parents=True, exist_ok=True)
            for path in _instances(folder):
                os.replace(path, target / path.name)
            shutil.rmtree(folder, ignore_errors=True)
            fsync_folder(target)
            moved.append(folder.name)
        if moved:
            fsync_folder(self.incoming)
        return moved

    def tidy(self) -> None:
        """Remove the queue's and the failed folder's own folders when they are empty (nothing else)."""
        for folder in (self.incoming, self.failed):
            with contextlib.suppress(OSError):
                folder.rmdir()
