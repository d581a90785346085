"""A DICOMweb node through ``dicomweb-client``: QIDO-RS queries, WADO-RS retrieval, STOW-RS storage."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from medswin.errors import PacsError
from medswin.pacs.base import PacsSettings, SeriesFound
from medswin.pacs.nodes import PacsAddress

__all__ = ["DicomWebNode"]

log = logging.getLogger(__name__)

#: QIDO-RS results asked for per request.
_PAGE = 500


def _value(item: dict[str, Any], tag: str) -> Any:
    """The first value of ``tag`` (8 hex digits) in a DICOM JSON object, or None."""
    values = item.get(tag, {}).get("Value") or [None]
    return values[0]


def _int(value: Any) -> int | None:
    try:
        return None if value in (None, "") else int(value)
    except (TypeError, ValueError):
        return None


class DicomWebNode:
    """One DICOMweb service root; every error names the node and what failed, never a credential."""

    def __init__(self, address: PacsAddress, settings: PacsSettings) -> None:
        self.address = address
        self.settings = settings
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            from dicomweb_client.api import DICOMwebClient

            from medswin.pacs.auth import make_session

            session = make_session(self.settings.credentials, self.settings.ca_bundle)
            client = DICOMwebClient(self.address.url, session=session, timeout=self.settings.timeout_s)
            # dicomweb-client retries every exception too (an untrusted certificate, a refused
            # connection) 5 times with 1-16 s back-off: 30 s before a plain error. Three tries,
            # 0.5 s then 1 s apart, still ride out a busy server (429/503).
            client.set_http_retry_params(retry=True, max_attempts=3, wait_exponential_multiplier=250)
            self._client = client
        return self._client

    def _call(self, what: str, function: Any, *args: Any, **kwargs: Any) -> Any:
        """Run one request, turning HTTP and connection errors into :class:`PacsError`."""
        import requests

        try:
            return function(*args, **kwargs)
        except requests.HTTPError as error:
            status = error.response.status_code if error.response is not None else "?"
            hint = {401: " (check MEDSWIN_PACS_USER/PASSWORD, TOKEN or AUTH_FILE)", 403: " (not permitted)"}
            raise PacsError(f"{self.address}: {what} refused, HTTP {status}{hint.get(status, '')}") from None
        except requests.exceptions.SSLError:
            raise PacsError(
                f"{self.address}: {what}: TLS certificate not trusted (pass --ca-bundle with the hospital's CA)"
            ) from None
        except requests.ConnectionError:
            raise PacsError(
                f"{self.address}: {what}: the server did not answer (is it running, and are the host "
                "and port right?)"
            ) from None
        except requests.RequestException as error:
            raise PacsError(f"{self.address}: {what} failed: {type(error).__name__}") from None

    def _search(self, what: str, function: Any, key: str, **kwargs: Any) -> list[dict[str, Any]]:
        """All pages of a QIDO-RS search, ``_PAGE`` results at a time.

        Paging stops at a short page or at one that brings nothing new: some servers ignore
        ``offset`` and would answer the same page forever.
        """
        results: dict[str, dict[str, Any]] = {}
        while True:
            page = self._call(what, function, limit=_PAGE, offset=len(results), **kwargs)
            fresh = {str(_value(item, key)): item for item in page if _value(item, key)}
            fresh = {uid: item for uid, item in fresh.items() if uid not in results}
            results.update(fresh)
            if len(page) < _PAGE or not fresh:
                return list(results.values())

    def studies(self, keys: dict[str, str]) -> list[str]:
        found = self._search(
            "study query (QIDO-RS)", self.client.search_for_studies, "0020000D", search_filters=keys
        )
        return sorted({str(_value(item, "0020000D")) for item in found if _value(item, "0020000D")})

    def series(self, study_uid: str, keys: dict[str, str]) -> list[SeriesFound]:
        found = self._search(
            "series query (QIDO-RS)",
            self.client.search_for_series,
            "0020000E",
            study_instance_uid=study_uid,
            search_filters=keys,
            fields=["SeriesNumber", "NumberOfSeriesRelatedInstances"],
        )
        return [
            SeriesFound(
                study_uid=study_uid,
                series_uid=str(_value(item, "0020000E")),
                modality=str(_value(item, "00080060") or ""),
                number=_int(_value(item, "00200011")),
                instances=_int(_value(item, "00201209")),
            )
            for item in found
            if _value(item, "0020000E")
        ]

    def retrieve(self, study_uid: str, series_uid: str, folder: Path) -> int:
        """Stream the series (WADO-RS) into ``folder``, one file per instance as it arrives."""

        def save_all() -> int:
            count = 0
            for dataset in self.client.iter_series(study_uid, series_uid):
                dataset.save_as(folder / f"{count:05d}.dcm", enforce_file_format=True)
                count += 1
            return count

        return int(self._call("retrieval (WADO-RS)", save_all))

    def store(self, paths: list[Path]) -> None:
        import pydicom

        datasets = [pydicom.dcmread(path) for path in paths]
        response = self._call("storage (STOW-RS)", self.client.store_instances, datasets=datasets)
        failed = response.get("FailedSOPSequence") if response is not None else None
        if failed:
            reason = _int(failed[0].get("FailureReason"))
            raise PacsError(
                f"{self.address}: storage (STOW-RS) refused {len(failed)} object(s), reason {reason}"
            )
