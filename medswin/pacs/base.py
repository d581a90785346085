"""What every PACS client shares: medswin's settings, a matched series, and the node interface."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from medswin.pacs.auth import Credentials
from medswin.pacs.nodes import PacsAddress

__all__ = ["PacsSettings", "SeriesFound", "PacsNode"]


@dataclass(frozen=True)
class PacsSettings:
    """How medswin talks to nodes: its own AE title (DIMSE), TLS trust and credentials (DICOMweb).

    Attributes:
        move_to: ``(host, port)`` to receive C-MOVE sub-operations on, for PACS that offer no
            C-GET; the PACS must know ``ae_title`` at this host and port. None: retrieve by C-GET.
    """

    ae_title: str = "MEDSWIN"
    ca_bundle: Path | None = None
    credentials: Credentials = field(default_factory=Credentials)
    timeout_s: float = 60.0
    move_to: tuple[str, int] | None = None


@dataclass(frozen=True)
class SeriesFound:
    """One series a query matched."""

    study_uid: str
    series_uid: str
    modality: str
    number: int | None = None
    instances: int | None = None


class PacsNode(Protocol):
    """What medswin needs of a node, over DICOMweb or DIMSE."""

    address: PacsAddress

    def studies(self, keys: dict[str, str]) -> list[str]:
        """StudyInstanceUIDs matching study-level ``keys``."""
        ...

    def series(self, study_uid: str, keys: dict[str, str]) -> list[SeriesFound]:
        """The study's series matching series-level ``keys``."""
        ...

    def retrieve(self, study_uid: str, series_uid: str, folder: Path) -> int:
        """Write the series' instances as DICOM files into ``folder``; returns how many."""
        ...

    def store(self, paths: list[Path]) -> None:
        """Store DICOM files on the node; :class:`PacsError` when it refuses any."""
        ...
