"""A real Orthanc (with its DICOMweb plugin) for tests: a plain process on 127.0.0.1, gone afterwards.

Orthanc comes from Debian (``orthanc``, ``orthanc-dicomweb``; ``make system-deps`` installs them).
The test writes its configuration: free HTTP and DICOM ports, a throw-away storage folder, basic
authentication, and DICOM peers allowed by AE title *and* host, so nothing but loopback clients that
the test names can query, retrieve or store.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

__all__ = ["Orthanc", "free_port", "find_orthanc", "start_orthanc"]

AE_TITLE = "ORTHANC"
USER, PASSWORD = "medswin", "s3cret-Pw"
PLUGIN_CANDIDATES = (
    "/usr/share/orthanc/plugins/libOrthancDicomWeb.so",
    "/usr/lib/orthanc/libOrthancDicomWeb.so.1.7",
)


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel's choice)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def find_orthanc() -> tuple[str, str]:
    """The Orthanc executable and the DICOMweb plugin; AssertionError saying how to install them."""
    executable = shutil.which("Orthanc") or (
        "/usr/sbin/Orthanc" if Path("/usr/sbin/Orthanc").exists() else None
    )
    plugin = next((p for p in PLUGIN_CANDIDATES if Path(p).exists()), None)
    assert executable and plugin, (
        "Orthanc and its DICOMweb plugin are needed for the PACS tests: "
        "run `make system-deps` (apt-get install orthanc orthanc-dicomweb)"
    )
    return executable, plugin


@dataclass
class Orthanc:
    """A running Orthanc: where to reach it and how to log in."""

    http_port: int
    dicom_port: int
    storage: Path
    process: subprocess.Popen
    aet: str = AE_TITLE
    user: str = USER
    password: str = PASSWORD

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb(self) -> str:
        return f"{self.url}/dicom-web"

    @property
    def dimse(self) -> str:
        return f"dimse://{self.aet}@127.0.0.1:{self.dicom_port}"

    def rest(self, method: str, path: str, **kwargs: object) -> requests.Response:
        response = requests.request(
            method, f"{self.url}{path}", auth=(self.user, self.password), timeout=30, **kwargs
        )
        response.raise_for_status()
        return response

    def upload(self, files: list[Path]) -> None:
        """Store DICOM files through the REST API (as a modality would, but without DIMSE)."""
        for path in files:
            self.rest("POST", "/instances", data=Path(path).read_bytes())

    def add_modality(self, name: str, aet: str, port: int) -> None:
        """Let Orthanc talk to a DICOM peer on loopback (query, retrieve and store in both directions)."""
        self.rest("PUT", f"/modalities/{name}", json={"AET": aet, "Host": "127.0.0.1", "Port": port})

    def series_of_study(self, study_uid: str) -> list[dict]:
        """Orthanc's series (main DICOM tags, instance ids) of one study."""
        found = self.rest("POST", "/tools/lookup", data=study_uid).json()
        study = next(item["ID"] for item in found if item["Type"] == "Study")
        return self.rest("GET", f"/studies/{study}/series").json()


def start_orthanc(root: Path, modalities: dict[str, tuple[str, int]]) -> Orthanc:
    """Start Orthanc under ``root`` (config, storage, log) and wait until its REST API answers."""
    executable, plugin = find_orthanc()
    http_port, dicom_port = free_port(), free_port()
    storage = root / "storage"
    config = {
        "Name": "medswin-test",
        "StorageDirectory": str(storage),
        "IndexDirectory": str(storage),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": AE_TITLE,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": True,
        "RegisteredUsers": {USER: PASSWORD},
        "DicomCheckCalledAet": True,
        "DicomCheckModalityHost": True,
        "DicomAlwaysAllowEcho": False,
        "DicomAlwaysAllowStore": False,
        "DicomAlwaysAllowFind": False,
        "DicomAlwaysAllowGet": False,
        "DicomAlwaysAllowMove": False,
        "UnknownSopClassAccepted": True,
        "DicomModalities": {
            name: {"AET": aet, "Host": "127.0.0.1", "Port": port} for name, (aet, port) in modalities.items()
        },
        "Plugins": [plugin],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True, "StudiesMetadata": "Full"},
        "HttpServerEnabled": True,
        "StableAge": 1,
    }
    (root / "orthanc.json").write_text(json.dumps(config, indent=2))
    log = open(root / "orthanc.log", "wb")  # noqa: SIM115 -- open for the process's lifetime
    process = subprocess.Popen(
        [executable, str(root / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT, cwd=root
    )
    server = Orthanc(http_port, dicom_port, storage, process)
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(
                f"Orthanc exited with {process.returncode}:\n{(root / 'orthanc.log').read_text()}"
            )
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{server.url}/system", auth=(USER, PASSWORD), timeout=2).ok:
                return server
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"Orthanc did not answer within 60 s:\n{(root / 'orthanc.log').read_text()}")
        time.sleep(0.1)


def stop_orthanc(server: Orthanc) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@contextlib.contextmanager
def running_orthanc(root: Path, modalities: dict[str, tuple[str, int]]) -> Iterator[Orthanc]:
    server = start_orthanc(root, modalities)
    try:
        yield server
    finally:
        stop_orthanc(server)
