"""PACS addresses as users write them: ``dicomweb:URL[?query]`` and ``dimse://AE@host:port[?query]``.

The query (``StudyInstanceUID=1.2.3``, ``ModalitiesInStudy=CT&StudyDate=20261201-``) uses DICOM
keywords and DICOM matching (ranges ``A-B``, wildcards ``*``). Credentials never belong in an
address (command lines end up in shell histories and process lists): an address with ``user:password@``
or a token in its query is refused; :mod:`medswin.pacs.auth` reads them from the environment or a file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qsl, urlsplit

from medswin.errors import PacsError

__all__ = ["PacsAddress", "parse_address", "is_pacs_address", "DIMSE_SCHEME", "DICOMWEB_SCHEME"]

DICOMWEB_SCHEME = "dicomweb:"
DIMSE_SCHEME = "dimse://"
_AE_TITLE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")  # DICOM AE: up to 16 printable chars, no backslash
_SECRET_KEYS = {"password", "token", "access_token", "apikey", "api_key", "key", "secret"}


def is_pacs_address(text: str) -> bool:
    """Whether ``text`` is a PACS address rather than a file path."""
    return str(text).startswith((DICOMWEB_SCHEME, DIMSE_SCHEME))


def check_ae_title(title: str, what: str) -> str:
    """``title`` when it is a valid DICOM AE title, else :class:`PacsError` naming ``what``."""
    if not _AE_TITLE.match(title) or not title.strip():
        raise PacsError(
            f"{what}: {title!r} is not a DICOM AE title (1-16 printable characters, no backslash)"
        )
    return title


@dataclass(frozen=True)
class PacsAddress:
    """One PACS node, and optionally a query on it.

    Attributes:
        kind: ``"dicomweb"`` or ``"dimse"``.
        url: the DICOMweb service root (``http(s)://host:port/dicom-web``); empty for DIMSE.
        host, port, called_ae: the DIMSE peer; empty / 0 for DICOMweb.
        query: DICOM keyword -> matching value, in the order given.
    """

    kind: Literal["dicomweb", "dimse"]
    url: str = ""
    host: str = ""
    port: int = 0
    called_ae: str = ""
    query: tuple[tuple[str, str], ...] = field(default=())

    def __str__(self) -> str:
        """The node without its query: safe for logs and records (addresses carry no credentials)."""
        if self.kind == "dicomweb":
            return f"{DICOMWEB_SCHEME}{self.url}"
        return f"{DIMSE_SCHEME}{self.called_ae}@{self.host}:{self.port}"


def _query(text: str, where: str) -> tuple[tuple[str, str], ...]:
    pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False)
    for key, _ in pairs:
        if key.lower() in _SECRET_KEYS:
            raise PacsError(
                f"{where}: credentials ({key}) do not belong in the address; set MEDSWIN_PACS_TOKEN or "
                "MEDSWIN_PACS_AUTH_FILE instead (see medswin predict --help)"
            )
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", key):
            raise PacsError(f"{where}: {key!r} is not a DICOM keyword (e.g. StudyInstanceUID, StudyDate)")
    return tuple(pairs)


def parse_address(text: str, *, what: str = "PACS address") -> PacsAddress:
    """Parse ``dicomweb:URL?query`` or ``dimse://AE@host:port?query``; :class:`PacsError` says what is wrong.

    Args:
        what: how the address is named in errors (e.g. ``--send-to``).
    """
    text = str(text)
    if text.startswith(DICOMWEB_SCHEME) and not text.startswith(DIMSE_SCHEME):
        parts = urlsplit(text[len(DICOMWEB_SCHEME) :])
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PacsError(f"{what} {text!r}: expected dicomweb:http(s)://host[:port]/path[?query]")
        if parts.username or parts.password:
            raise PacsError(
                f"{what}: user names and passwords do not belong in the address; set MEDSWIN_PACS_USER and "
                "MEDSWIN_PACS_PASSWORD (or MEDSWIN_PACS_AUTH_FILE) instead"
            )
        url = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
        return PacsAddress("dicomweb", url=url, query=_query(parts.query, what))
    if text.startswith(DIMSE_SCHEME):
        parts = urlsplit(text)
        called = parts.username
        try:
            port = parts.port
        except ValueError:
            port = None
        if not called or not parts.hostname or port is None or parts.password is not None:
            raise PacsError(f"{what} {text!r}: expected dimse://AE_TITLE@host:port[?query]")
        if parts.path not in ("", "/"):
            raise PacsError(f"{what} {text!r}: a DIMSE address has no path (dimse://AE_TITLE@host:port)")
        check_ae_title(called, what)
        return PacsAddress(
            "dimse", host=parts.hostname, port=port, called_ae=called, query=_query(parts.query, what)
        )
    raise PacsError(f"{what} {text!r}: expected dicomweb:http(s)://... or dimse://AE_TITLE@host:port")
