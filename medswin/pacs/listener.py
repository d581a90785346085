"""A C-STORE SCP that collects studies: what ``medswin listen`` segments as they arrive.

Only peers whose calling AE title is configured may associate (pynetdicom rejects the rest). Each
instance is checked (it must carry valid Study/Series/SOP Instance UIDs) and written durably into the
output folder's queue (:class:`~medswin.pacs.spool.StudySpool`) *before* success is returned: an
acknowledged instance is medswin's to keep. A malformed object is refused with a failure status and
the listener carries on. A study counts as complete once no instance of it has arrived for
``quiet_s`` seconds (DIMSE has no "end of study" message); studies already in the queue when the
listener starts (a stop, a crash, a reboot) count from their newest file.
"""

from __future__ import annotations

import logging
import socketserver
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medswin.errors import PacsError
from medswin.pacs.nodes import check_ae_title
from medswin.pacs.spool import StudySpool

__all__ = ["StudyReceiver", "ReceivedStudy"]

log = logging.getLogger(__name__)

_SUCCESS = 0x0000
_CANNOT_UNDERSTAND = 0xC000
_OUT_OF_RESOURCES = 0xA700


@dataclass(frozen=True)
class ReceivedStudy:
    """A complete study in the queue: its folder and how many instances it holds."""

    study_uid: str
    folder: Path
    instances: int


def _valid_uid(value: Any) -> str | None:
    from pydicom.uid import UID

    text = str(value or "")
    return text if text and UID(text).is_valid else None


class StudyReceiver:
    """Receive instances into ``spool`` and report studies that went quiet.

    Args:
        spool: the output folder's queue; studies already in it are reported once quiet.
        ae_title: this listener's AE title (calls to any other called AE title are rejected).
        port: TCP port; ``bind``: address to listen on (``0.0.0.0``: every interface).
        accept: calling AE titles allowed to store; at least one.
        quiet_s: seconds without a new instance after which a study is complete.
    """

    def __init__(
        self,
        spool: StudySpool,
        *,
        ae_title: str,
        port: int,
        accept: Sequence[str],
        bind: str = "0.0.0.0",
        quiet_s: float = 30.0,
    ) -> None:
        if not accept:
            raise PacsError("medswin listen: name the peers allowed to send (--accept AE_TITLE or --send-to)")
        self.ae_title = check_ae_title(ae_title, "--ae-title")
        self.accept = [check_ae_title(a, "--accept") for a in accept]
        self.spool, self.port, self.bind, self.quiet_s = spool, port, bind, quiet_s
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}  # study -> monotonic time of its newest instance
        self._server: Any = None
        self.refused = 0
        self.recovered = self._recover()

    def _recover(self) -> list[str]:
        """Queue the studies a previous listener acknowledged but did not finish."""
        now_wall, now = time.time(), time.monotonic()
        found = self.spool.queued()
        with self._lock:
            for study in found:
                self._last[study.study_uid] = now - max(0.0, now_wall - study.last_arrival)
        if found:
            log.info(
                "%d study(ies) waiting in %s from before (%d instance(s))",
                len(found),
                self.spool.incoming,
                sum(s.instances for s in found),
            )
        return [s.study_uid for s in found]

    def start(self) -> None:
        """Listen in background threads; :class:`PacsError` when the port cannot be opened."""
        from pynetdicom import AE, AllStoragePresentationContexts, evt
        from pynetdicom.sop_class import Verification

        ae = AE(ae_title=self.ae_title)
        ae.require_called_aet = True
        ae.require_calling_aet = self.accept
        ae.supported_contexts = AllStoragePresentationContexts
        ae.add_supported_context(Verification)
        try:
            self._server = ae.start_server(
                (self.bind, self.port), block=False, evt_handlers=[(evt.EVT_C_STORE, self._on_store)]
            )
        except OSError as error:
            raise PacsError(
                f"medswin listen: cannot listen on {self.bind}:{self.port} ({error.strerror or error})"
            ) from None
        log.info(
            "listening as %s on %s:%d (accepting %s)",
            self.ae_title,
            self.bind,
            self.port,
            ", ".join(self.accept),
        )

    def _on_store(self, event: Any) -> int:
        """Write one instance into its study's folder; a failure status (never an exception) otherwise."""
        try:
            dataset = event.dataset
            study, series, instance = (
                _valid_uid(dataset.get(k))
                for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
            )
        except Exception as error:  # undecodable data set: refuse it, keep listening
            log.warning(
                "refused an object from %s: cannot decode it (%s)",
                event.assoc.requestor.ae_title,
                type(error).__name__,
            )
            self.refused += 1
            return _CANNOT_UNDERSTAND
        if not (study and series and instance):
            log.warning(
                "refused an object from %s: it lacks a valid Study, Series or SOP Instance UID",
                event.assoc.requestor.ae_title,
            )
            self.refused += 1
            return _CANNOT_UNDERSTAND
        from medswin.io.phi import remember_identifiers

        remember_identifiers(dataset)  # later log lines (folder names, descriptions) mask this patient
        try:
            self.spool.store(study, instance, event.encoded_dataset())
        except OSError as error:  # not acknowledged: the sender keeps its copy and may retry
            log.error(
                "cannot store a received object in %s (%s)", self.spool.incoming, error.strerror or error
            )
            return _OUT_OF_RESOURCES
        with self._lock:
            self._last[study] = time.monotonic()
        return _SUCCESS

    def completed(self) -> list[ReceivedStudy]:
        """Studies quiet for ``quiet_s``, oldest first; each is reported once (see :meth:`wait_for`)."""
        now = time.monotonic()
        with self._lock:
            quiet = sorted((t, s) for s, t in self._last.items() if now - t >= self.quiet_s)
            for _, study in quiet:
                del self._last[study]
        done = []
        for _, study in quiet:
            count = len(self.spool.instances(study))
            if count:
                done.append(ReceivedStudy(study, self.spool.incoming / study, count))
        return done

    def wait_for(self, study_uid: str, seconds: float) -> None:
        """Report ``study_uid`` again in ``seconds`` (its output folder was busy), unless more arrives."""
        with self._lock:
            due = time.monotonic() - self.quiet_s + seconds
            self._last[study_uid] = max(self._last.get(study_uid, due), due)

    def receiving(self) -> bool:
        """Whether a study is still arriving (or waiting for its quiet period)."""
        with self._lock:
            return bool(self._last)

    def stop(self, grace_s: float = 5.0) -> None:
        """Stop accepting associations, let open ones finish for ``grace_s``, then end them.

        What was acknowledged is on disk either way; an association ended early leaves its sender
        with the instances it was not told were stored.
        """
        if self._server is None:
            return
        server, self._server = self._server, None
        socketserver.BaseServer.shutdown(server)  # no new associations
        server.server_close()
        deadline = time.monotonic() + grace_s
        while server.active_associations and time.monotonic() < deadline:
            time.sleep(0.1)
        if server.active_associations:
            log.warning(
                "ending %d association(s) still sending after %.0f s",
                len(server.active_associations),
                grace_s,
            )
        for association in server.active_associations:
            association.abort()
        server.shutdown()
