"""``medswin listen`` as a child process, and senders that push studies to it (dcmtk and pynetdicom)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE

REPOSITORY = Path(__file__).resolve().parents[2]
CT = "1.2.840.10008.5.1.4.1.1.2"
MEDSWIN_AE = "MEDSWIN"
SENDER_AE = "SENDER"


def start_listener(port: int, out: Path, *extra: str, timeout_s: float = 120.0) -> subprocess.Popen:
    """Start ``medswin listen -m demo`` on 127.0.0.1:``port`` and wait until it accepts connections."""
    env = {**os.environ, "PYTHONPATH": f"{REPOSITORY}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    command = [sys.executable, "-m", "medswin", "listen", "--ae-title", MEDSWIN_AE, "--port", str(port)]
    command += ["--bind", "127.0.0.1", "--out", str(out), "-m", "demo", *extra]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:  # the model loads before the port opens
        assert process.poll() is None, process.communicate()[0]
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError(f"medswin listen did not open port {port}")


def storescu(port: int, folder: Path, calling: str = SENDER_AE) -> None:
    """Send every file under ``folder`` with dcmtk's ``storescu`` (a real sender); raises on failure."""
    subprocess.run(
        ["storescu", "-aet", calling, "-aec", MEDSWIN_AE, "+sd", "127.0.0.1", str(port), str(folder)],
        check=True,
        capture_output=True,
        timeout=120,
    )


def send_slowly(
    port: int, datasets: list[Dataset], acknowledged: list[str], pause_s: float, calling: str = SENDER_AE
) -> None:
    """C-STORE ``datasets`` one by one on one association, appending each SOP Instance UID the listener
    acknowledged (status 0) to ``acknowledged``; returns when done or when the association ends."""
    ae = AE(ae_title=calling)
    ae.add_requested_context(CT, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", port, ae_title=MEDSWIN_AE)
    if not assoc.is_established:
        return
    for dataset in datasets:
        if not assoc.is_established:
            return
        status = assoc.send_c_store(dataset)
        if getattr(status, "Status", None) == 0x0000:
            acknowledged.append(str(dataset.SOPInstanceUID))
        elif not assoc.is_established:
            return
        time.sleep(pause_s)
    if assoc.is_established:
        assoc.release()


def wait_for(condition, timeout_s: float, what: str, poll_s: float = 0.05) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
