"""``medswin listen`` never loses what it acknowledged: SIGTERM, kill -9, a busy output folder, failures.

Real senders (dcmtk ``storescu``, pynetdicom) on loopback; the listener is a child process running the
shipped demo model. Each scenario ends with every acknowledged instance either segmented (record and
outputs written) or kept in the queue / the failed folder, listed with its reason.
"""

from __future__ import annotations

import csv
import json
import signal
import threading
from pathlib import Path

import pydicom
import pytest
from dicom_factory import ct_image, write_series
from listener_process import send_slowly, start_listener, storescu, wait_for
from orthanc import free_port

from medswin.batch.folder import OutputLock

pytestmark = pytest.mark.slow


def _study(folder: Path, slices: int, seed: int = 3):
    return write_series(folder, ct_image(shape=(24, 20, slices), seed=seed))


def _queued(out: Path, study_uid: str) -> set[str]:
    return {p.stem for p in (out / ".incoming" / study_uid).glob("*.dcm")}


def _finish(process, timeout: float = 120) -> str:  # noqa: ANN001
    return process.communicate(timeout=timeout)[0]


def _summary(out: Path) -> dict[str, dict[str, str]]:
    with (out / "summary.csv").open(newline="") as stream:
        return {row["case"]: row for row in csv.DictReader(stream)}


def test_sigterm_while_segmenting_keeps_the_study_and_the_next_start_segments_it(tmp_path: Path) -> None:
    series = _study(tmp_path / "study", 32)
    out, port = tmp_path / "out", free_port()
    case = f"{series.study_uid}_s1"
    # test-time augmentation makes the case slow enough to be interrupted mid-way
    process = start_listener(port, out, "--accept", "SENDER", "--quiet-period", "0.5", "--tta")
    try:
        storescu(port, series.folder)
        wait_for(lambda: (out / f".{case}.running").exists(), 60, "the case to start")
        process.send_signal(signal.SIGTERM)
        output = _finish(process, 60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert not (out / f"{case}.json").exists(), (
        "the case finished before SIGTERM; the test needs a slower case"
    )
    assert _queued(out, series.study_uid) == set(series.sop_instance_uids), output
    assert "left in the queue" in output

    process = start_listener(port, out, "--accept", "SENDER", "--quiet-period", "0.5", "--max-studies", "1")
    output = _finish(process)
    assert process.returncode == 0, output
    assert "32 instance(s) received, 1 of 1 series segmented" in output
    record = json.loads((out / f"{case}.json").read_text())
    assert {f"{case}.nii.gz", f"{case}.dcm"} <= set(record["files"])
    assert not (out / ".incoming").exists() and not (out / ".failed").exists()


def test_sigterm_while_a_study_arrives_keeps_every_acknowledged_instance(tmp_path: Path) -> None:
    series = _study(tmp_path / "study", 200)
    datasets = [pydicom.dcmread(f) for f in series.files]
    out, port = tmp_path / "out", free_port()
    process = start_listener(port, out, "--accept", "SENDER", "--quiet-period", "60")
    acknowledged: list[str] = []
    sender = threading.Thread(target=send_slowly, args=(port, datasets, acknowledged, 0.05))
    try:
        sender.start()
        wait_for(lambda: len(acknowledged) >= 40, 60, "40 acknowledged instances")
        process.send_signal(signal.SIGTERM)  # the association is still open
        output = _finish(process, 60)
        sender.join(60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert 40 <= len(acknowledged) < 200, "the sender finished before SIGTERM ended its association"
    queued = _queued(out, series.study_uid)
    assert set(acknowledged) <= queued

    # the next start segments what was received (a partial series, contiguous slices)
    process = start_listener(port, out, "--accept", "SENDER", "--quiet-period", "0.5", "--max-studies", "1")
    output = _finish(process)
    assert process.returncode == 0, output
    assert f"{len(queued)} instance(s) received, 1 of 1 series segmented" in output
    assert (out / f"{series.study_uid}_s1.json").exists(), output


def test_kill_9_then_a_busy_output_folder_loses_nothing(tmp_path: Path) -> None:
    """Acknowledged, then the listener is killed; the next one finds the folder held by another run:
    the study waits in the queue and is segmented once the folder is free."""
    series = _study(tmp_path / "study", 12)
    out, port = tmp_path / "out", free_port()
    case = f"{series.study_uid}_s1"
    process = start_listener(port, out, "--accept", "SENDER", "--quiet-period", "60")
    try:
        storescu(port, series.folder)  # returns once every instance was acknowledged
    finally:
        process.kill()
        process.communicate(timeout=30)
    assert _queued(out, series.study_uid) == set(series.sop_instance_uids)

    lock = OutputLock(out)
    lock.__enter__()  # a `medswin predict` holding the folder
    process = start_listener(port, out, "--accept", "SENDER", "--quiet-period", "0.5", "--max-studies", "1")
    try:
        threading.Event().wait(3.0)  # the queued study is due at once: the listener tries and must wait
        assert _queued(out, series.study_uid) == set(series.sop_instance_uids)
        assert not (out / f"{case}.json").exists()
    finally:
        lock.release()
    output = _finish(process)
    assert process.returncode == 0, output
    assert "waits in the queue" in output and "in use by" in output
    assert (out / f"{case}.json").exists()
    assert not (out / ".incoming").exists()


def test_failed_studies_are_kept_listed_and_retried_with_one_option(tmp_path: Path) -> None:
    bad = _study(tmp_path / "bad", 10, seed=5)
    good = _study(tmp_path / "good", 10, seed=6)
    out, port = tmp_path / "out", free_port()
    bad_case, good_case = f"{bad.study_uid}_s1", f"{good.study_uid}_s1"
    out.mkdir()
    (out / f"{bad_case}.nii.gz").write_bytes(b"a label map the user edited")  # not medswin's to replace
    process = start_listener(port, out, "--accept", "SENDER", "--quiet-period", "0.5", "--max-studies", "2")
    storescu(port, bad.folder)
    wait_for(lambda: (out / ".failed" / bad.study_uid).exists(), 90, "the first study to fail")
    storescu(port, good.folder)
    output = _finish(process)
    assert process.returncode == 1, output
    failure = json.loads((out / ".failed" / bad.study_uid / "failure.json").read_text())
    assert "0 of 1 series segmented" in failure["reason"] and bad_case in failure["cases"]
    assert {p.stem for p in (out / ".failed" / bad.study_uid).glob("*.dcm")} == set(bad.sop_instance_uids)
    rows = _summary(out)  # the second study's run keeps the first study's failure
    assert rows[bad_case]["status"] == "failed" and "not" in rows[bad_case]["reason"]
    assert rows[good_case]["status"] == "done"

    (out / f"{bad_case}.nii.gz").unlink()  # the user resolves the cause, then retries
    process = start_listener(
        port, out, "--accept", "SENDER", "--quiet-period", "0.5", "--max-studies", "1", "--retry-failed"
    )
    output = _finish(process)
    assert process.returncode == 0, output
    assert "1 failed study(ies) put back in the queue" in output
    rows = _summary(out)
    assert rows[bad_case]["status"] == "done" and rows[good_case]["status"] == "skipped"
    assert not (out / ".failed").exists() and not (out / ".incoming").exists()
