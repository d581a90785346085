"""One Orthanc per test module (tests/pacs/orthanc.py), and CT studies written by the DICOM factory."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "io"))

from orthanc import Orthanc, free_port, running_orthanc  # noqa: E402

#: medswin's AE title in the tests, and the port its listener (when a test starts one) uses.
MEDSWIN_AE = "MEDSWIN"


@pytest.fixture(scope="module")
def medswin_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory, medswin_port: int) -> Iterator[Orthanc]:
    """A fresh Orthanc that knows medswin as a DICOM peer (AE ``MEDSWIN`` on loopback)."""
    with running_orthanc(
        tmp_path_factory.mktemp("orthanc"), {"medswin": (MEDSWIN_AE, medswin_port)}
    ) as server:
        yield server
