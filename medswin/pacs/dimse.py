"""A DIMSE node through ``pynetdicom``: C-FIND queries, C-GET retrieval, C-STORE storage.

C-GET brings the instances back over the association medswin opened, so retrieving needs no
listening port and no C-MOVE destination configured on the PACS; the PACS must know medswin's AE
title (and, usually, its host) as a peer allowed to query and retrieve.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from medswin.errors import PacsError
from medswin.pacs.base import PacsSettings, SeriesFound
from medswin.pacs.nodes import PacsAddress

__all__ = ["DimseNode", "IMAGE_STORAGE_CLASSES"]

log = logging.getLogger(__name__)

#: image storage SOP classes medswin retrieves (single-frame and enhanced CT, MR, PET; legacy converted).
IMAGE_STORAGE_CLASSES = (
    "1.2.840.10008.5.1.4.1.1.2",  # CT
    "1.2.840.10008.5.1.4.1.1.2.1",  # Enhanced CT
    "1.2.840.10008.5.1.4.1.1.2.2",  # Legacy Converted Enhanced CT
    "1.2.840.10008.5.1.4.1.1.4",  # MR
    "1.2.840.10008.5.1.4.1.1.4.1",  # Enhanced MR
    "1.2.840.10008.5.1.4.1.1.4.4",  # Legacy Converted Enhanced MR
    "1.2.840.10008.5.1.4.1.1.128",  # PET
    "1.2.840.10008.5.1.4.1.1.130",  # Enhanced PET
    "1.2.840.10008.5.1.4.1.1.128.1",  # Legacy Converted Enhanced PET
)
_SUCCESS = 0x0000
_CANNOT_UNDERSTAND = 0xC000
_PENDING = (0xFF00, 0xFF01)


def _int(value: Any) -> int | None:
    try:
        return None if value in (None, "") else int(value)
    except (TypeError, ValueError):
        return None


class DimseNode:
    """One DICOM peer (AE title, host, port); every error names it and the operation."""

    def __init__(self, address: PacsAddress, settings: PacsSettings) -> None:
        self.address = address
        self.settings = settings

    def _application(self) -> Any:
        from pynetdicom import AE

        ae = AE(ae_title=self.settings.ae_title)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self.settings.timeout_s
        return ae

    @contextmanager
    def _association(self, ae: Any, what: str, **kwargs: Any) -> Iterator[Any]:
        assoc = ae.associate(self.address.host, self.address.port, ae_title=self.address.called_ae, **kwargs)
        if not assoc.is_established:
            silent = None if assoc.is_rejected else self._unanswered()
            if silent is not None:
                raise PacsError(
                    f"{self.address}: {what}: the peer did not answer ({silent}: is the PACS running, "
                    "and are the host and port right?)"
                )
            why = "rejected" if assoc.is_rejected else "aborted" if assoc.is_aborted else "not established"
            raise PacsError(
                f"{self.address}: {what}: association {why} (is medswin's AE title {self.settings.ae_title!r} "
                "known to the PACS, from this host, and is the called AE title right?)"
            )
        try:
            yield assoc
        finally:
            if assoc.is_established:
                assoc.release()

    def _unanswered(self) -> str | None:
        """Why the peer's port takes no connection (``connection refused``), or None when it does:
        pynetdicom reports both an unreachable port and a peer that hung up as an abort."""
        import socket

        wait = min(self.settings.timeout_s, 5.0)
        try:
            with socket.create_connection((self.address.host, self.address.port), timeout=wait):
                return None
        except TimeoutError:
            return f"no connection within {wait:g} s"
        except OSError as error:
            text = error.strerror or str(error) or "no connection"
            return f"{text[:1].lower()}{text[1:]}"

    def _find(self, level: str, keys: dict[str, str], returned: tuple[str, ...]) -> list[Any]:
        from pydicom.dataset import Dataset
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as FIND

        identifier = Dataset()
        identifier.QueryRetrieveLevel = level
        for keyword in returned:
            setattr(identifier, keyword, "")
        for keyword, value in keys.items():
            try:
                setattr(identifier, keyword, value)
            except (ValueError, TypeError) as error:
                raise PacsError(
                    f"{self.address}: query key {keyword}={value!r} is not valid ({error})"
                ) from None
        ae = self._application()
        ae.add_requested_context(FIND)
        results = []
        with self._association(ae, f"{level.lower()} query (C-FIND)") as assoc:
            for status, found in assoc.send_c_find(identifier, FIND):
                code = getattr(status, "Status", None)
                if code in _PENDING and found is not None:
                    results.append(found)
                elif code is None or code != _SUCCESS:
                    raise PacsError(
                        f"{self.address}: {level.lower()} query (C-FIND) failed"
                        + ("" if code is None else f", status 0x{code:04X}")
                    )
        return results

    def studies(self, keys: dict[str, str]) -> list[str]:
        found = self._find("STUDY", keys, ("StudyInstanceUID",))
        return sorted({str(ds.StudyInstanceUID) for ds in found if ds.get("StudyInstanceUID")})

    def series(self, study_uid: str, keys: dict[str, str]) -> list[SeriesFound]:
        found = self._find(
            "SERIES",
            {**keys, "StudyInstanceUID": study_uid},
            ("SeriesInstanceUID", "Modality", "SeriesNumber", "NumberOfSeriesRelatedInstances"),
        )
        return [
            SeriesFound(
                study_uid=study_uid,
                series_uid=str(ds.SeriesInstanceUID),
                modality=str(ds.get("Modality", "")),
                number=_int(ds.get("SeriesNumber")),
                instances=_int(ds.get("NumberOfSeriesRelatedInstances")),
            )
            for ds in found
            if ds.get("SeriesInstanceUID")
        ]

    def retrieve(self, study_uid: str, series_uid: str, folder: Path) -> int:
        """C-GET (or, with ``settings.move_to``, C-MOVE) the series; each instance is written to
        ``folder`` as it arrives."""
        from pydicom.dataset import Dataset

        count = 0

        def on_store(event: Any) -> int:
            nonlocal count
            if str(event.dataset.get("SeriesInstanceUID", "")) != series_uid:
                return _CANNOT_UNDERSTAND  # not what was asked for: never mixed into the case
            (folder / f"{count:05d}.dcm").write_bytes(event.encoded_dataset())
            count += 1
            return _SUCCESS

        identifier = Dataset()
        identifier.QueryRetrieveLevel = "SERIES"
        identifier.StudyInstanceUID = study_uid
        identifier.SeriesInstanceUID = series_uid
        if self.settings.move_to is None:
            final = self._get(identifier, on_store)
            what = "retrieval (C-GET)"
        else:
            final = self._move(identifier, on_store)
            what = "retrieval (C-MOVE)"
        if final is None or final not in (_SUCCESS, 0xB000):
            raise PacsError(
                f"{self.address}: {what} failed" + ("" if final is None else f", status 0x{final:04X}")
            )
        return count

    def _get(self, identifier: Any, on_store: Any) -> int | None:
        """C-GET: the instances come back over this association (storage roles negotiated)."""
        from pynetdicom import build_role, evt
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet as GET

        ae = self._application()
        ae.add_requested_context(GET)
        roles = []
        for uid in IMAGE_STORAGE_CLASSES:
            ae.add_requested_context(uid)
            roles.append(build_role(uid, scp_role=True))
        final = None
        handlers = [(evt.EVT_C_STORE, on_store)]
        with self._association(ae, "retrieval (C-GET)", ext_neg=roles, evt_handlers=handlers) as assoc:
            for status, _ in assoc.send_c_get(identifier, GET):
                final = getattr(status, "Status", None)
        return final

    def _move(self, identifier: Any, on_store: Any) -> int | None:
        """C-MOVE to medswin's own AE title, received by a storage SCP open for this retrieval only."""
        from pynetdicom import evt
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelMove as MOVE

        assert self.settings.move_to is not None
        host, port = self.settings.move_to
        receiver = self._application()
        receiver.require_calling_aet = [self.address.called_ae]
        for uid in IMAGE_STORAGE_CLASSES:
            receiver.add_supported_context(uid)
        try:
            server = receiver.start_server(
                (host, port), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)]
            )
        except OSError as error:
            raise PacsError(
                f"{self.address}: cannot receive C-MOVE on {host}:{port} ({error.strerror or error})"
            ) from None
        try:
            ae = self._application()
            ae.add_requested_context(MOVE)
            final = None
            with self._association(ae, "retrieval (C-MOVE)") as assoc:
                for status, _ in assoc.send_c_move(identifier, self.settings.ae_title, MOVE):
                    final = getattr(status, "Status", None)
            return final
        finally:
            server.shutdown()

    def store(self, paths: list[Path]) -> None:
        """C-STORE each file with its own SOP class; :class:`PacsError` at the first refusal."""
        import pydicom
        from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

        datasets = [pydicom.dcmread(path) for path in paths]
        ae = self._application()
        for sop_class in sorted({str(ds.SOPClassUID) for ds in datasets}):
            ae.add_requested_context(sop_class, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
        with self._association(ae, "storage (C-STORE)") as assoc:
            for path, dataset in zip(paths, datasets, strict=True):
                status = assoc.send_c_store(dataset)
                code = getattr(status, "Status", None)
                if code != _SUCCESS:
                    raise PacsError(
                        f"{self.address}: storage (C-STORE) of {Path(path).name} refused"
                        + ("" if code is None else f", status 0x{code:04X}")
                    )
