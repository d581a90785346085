"""Query results as series to retrieve: one per series of the model's modality, as the folder reader
makes one case per image series.

:func:`connect` opens the right client for an address; :func:`find_series` runs the address's
query (study-level keys on studies, series-level keys on their series) and returns
:class:`RemoteSeries`, each of which retrieves itself into a folder when its case is read.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from medswin.errors import PacsError
from medswin.pacs.auth import load_credentials
from medswin.pacs.base import PacsNode, PacsSettings, SeriesFound
from medswin.pacs.nodes import PacsAddress, check_ae_title, parse_address

__all__ = ["PacsSettings", "PacsNode", "RemoteSeries", "SeriesFound", "connect", "find_series", "SERIES_KEYS"]

log = logging.getLogger(__name__)

#: query keys matched on series; every other key is matched on studies.
SERIES_KEYS = frozenset(
    {"SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription", "BodyPartExamined", "SeriesDate"}
)


def connect(address: PacsAddress | str, settings: PacsSettings | None = None) -> PacsNode:
    """The client for ``address`` (nothing is contacted until it is used)."""
    if isinstance(address, str):
        address = parse_address(address)
    settings = settings or PacsSettings(credentials=load_credentials())
    check_ae_title(settings.ae_title, "--ae-title")
    if address.kind == "dicomweb":
        from medswin.pacs.dicomweb import DicomWebNode

        return DicomWebNode(address, settings)
    from medswin.pacs.dimse import DimseNode

    return DimseNode(address, settings)


@dataclass(frozen=True)
class RemoteSeries:
    """A series on a node, retrieved when its case is read (into the batch's work area)."""

    node: PacsNode = field(compare=False, repr=False)
    found: SeriesFound

    def __str__(self) -> str:
        return f"{self.node.address} series {self.found.series_uid}"

    def retrieve(self, folder: Path) -> Path:
        """Fetch the series into ``folder`` (created); :class:`PacsError` when nothing arrives."""
        folder.mkdir(parents=True, exist_ok=True)
        count = self.node.retrieve(self.found.study_uid, self.found.series_uid, folder)
        if count == 0:
            raise PacsError(f"{self}: the node sent no instance of the series")
        log.info("%s: retrieved %d instance(s)", self, count)
        return folder


def find_series(node: PacsNode, modality: str) -> list[RemoteSeries]:
    """Every series of ``modality`` in the studies the address's query matches, sorted by study and number.

    Raises :class:`PacsError` when the query is empty (it would list the whole PACS) or matches nothing.
    """
    query = dict(node.address.query)
    if not query:
        raise PacsError(
            f"{node.address}: name what to segment, e.g. ?StudyInstanceUID=... or "
            "?ModalitiesInStudy=CT&StudyDate=20261201-"
        )
    from medswin.io.phi import remember_identifiers

    remember_identifiers(query)  # a query by PatientID/PatientName: logs of the requests mask it
    study_keys = {k: v for k, v in query.items() if k not in SERIES_KEYS}
    series_keys = {k: v for k, v in query.items() if k in SERIES_KEYS}
    wanted = series_keys.get("Modality", modality)
    if wanted.upper() != modality.upper():
        raise PacsError(
            f"{node.address}: the query asks for Modality={wanted}, but the model takes {modality}"
        )
    series_keys["Modality"] = modality
    studies = node.studies(study_keys)
    if not studies:
        asked = " ".join(f"{k}={v}" for k, v in study_keys.items()) or " ".join(
            f"{k}={v}" for k, v in series_keys.items() if k != "Modality"
        )
        raise PacsError(f"{node.address}: no study matches {asked or 'the query'}")
    found: list[RemoteSeries] = []
    for study_uid in studies:
        found.extend(RemoteSeries(node, s) for s in node.series(study_uid, series_keys))
    if not found:
        raise PacsError(
            f"{node.address}: the query matched {len(studies)} stud{'y' if len(studies) == 1 else 'ies'} but no "
            f"{modality} series"
        )
    return sorted(
        found,
        key=lambda r: (r.found.study_uid, r.found.number is None, r.found.number or 0, r.found.series_uid),
    )
