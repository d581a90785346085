"""A real Orthanc (with its DICOMweb plugin) for tests: a plain process on 127.0.0.1, gone afterwards.

Orthanc comes from Debian (``orthanc``, ``orthanc-dicomweb``; ``make system-deps`` installs them).
The test writes its configuration: free HTTP and DICOM ports, a throw-away storage folder, basic
authentication, and DICOM peers allowed by AE title *and* host, so nothing but loopback clients that
the test names can query, retrieve or store.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

__all__ = [
    "Orthanc",
    "free_port",
    "find_orthanc",
    "start_orthanc",
    "running_orthanc",
    "tls_proxy",
    "check_seg_references",
]

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
            method,
            f"{self.url}{path}",
            auth=(self.user, self.password),
            timeout=30,
            **kwargs,
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

    def segmentations(self, study_uid: str, modality: str = "SEG") -> list[Any]:
        """The DICOM-SEG (or other ``modality``, e.g. RTSTRUCT) objects stored in one study, as pydicom data sets."""
        import pydicom

        segs = []
        for series in self.series_of_study(study_uid):
            if series["MainDicomTags"].get("Modality") == modality:
                for instance in series["Instances"]:
                    raw = self.rest("GET", f"/instances/{instance}/file").content
                    segs.append(pydicom.dcmread(io.BytesIO(raw)))
        return segs


def check_seg_references(seg: Any, study_uid: str, series_uid: str, sop_instance_uids: list[str]) -> None:
    """Assert that highdicom reads ``seg`` and that it belongs to the study and references every instance."""
    import highdicom as hd

    seg = hd.seg.Segmentation.from_dataset(seg)
    assert seg.StudyInstanceUID == study_uid
    referenced = seg.ReferencedSeriesSequence[0]
    assert referenced.SeriesInstanceUID == series_uid
    assert {str(i.ReferencedSOPInstanceUID) for i in referenced.ReferencedInstanceSequence} == set(
        sop_instance_uids
    )


def make_test_ca(root: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and a certificate for 127.0.0.1 signed by it (openssl): CA, certificate, key."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=root, check=True, capture_output=True)

    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=medswin test CA",
    )
    openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    )
    (root / "san.ext").write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    openssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    )
    return root / "ca.pem", root / "server.pem", root / "server.key"


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
            if server.rest("GET", "/system").ok:
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


@contextlib.contextmanager
def tls_proxy(root: Path, target_port: int) -> Iterator[tuple[int, Path]]:
    """HTTPS on loopback in front of a plain HTTP port (as nginx often fronts Orthanc): (port, CA PEM).

    Orthanc's own HTTPS (1.10, Debian) crashed on its first TLS request here, so TLS is terminated
    by this byte pipe, with a certificate from a CA made for the test.
    """
    import ssl
    import threading

    ca, certificate, key = make_test_ca(root)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def serve(client: socket.socket) -> None:
        try:
            secure = context.wrap_socket(client, server_side=True)
        except (OSError, ssl.SSLError):  # the client did not trust the certificate
            client.close()
            return
        upstream = socket.create_connection(("127.0.0.1", target_port))
        back = threading.Thread(target=pipe, args=(upstream, secure), daemon=True)
        back.start()
        pipe(secure, upstream)
        back.join(30)
        secure.close()
        upstream.close()

    def accept() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            client.settimeout(None)
            threading.Thread(target=serve, args=(client,), daemon=True).start()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield int(listener.getsockname()[1]), ca
    finally:
        stop.set()
        acceptor.join()
        listener.close()
