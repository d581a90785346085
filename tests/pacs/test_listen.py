"""``medswin listen`` as a real process: Orthanc sends a study, the SEG and RTSTRUCT come back; refusals; SIGTERM."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from pathlib import Path

import pydicom
import pytest
from conftest import MEDSWIN_AE
from dicom_factory import ct_image, write_series
from listener_process import start_listener
from orthanc import Orthanc, check_seg_references
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE

CT = "1.2.840.10008.5.1.4.1.1.2"


def _listen(port: int, out: Path, orthanc: Orthanc, *extra: str) -> subprocess.Popen:
    return start_listener(port, out, "--send-to", orthanc.dimse, *extra)


def _store(port: int, calling: str, dataset: Dataset) -> tuple[bool, int | None]:
    """C-STORE one data set as ``calling``: (association accepted, status)."""
    ae = AE(ae_title=calling)
    ae.add_requested_context(CT, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", port, ae_title=MEDSWIN_AE)
    if not assoc.is_established:
        return False, None
    status = assoc.send_c_store(dataset)
    assoc.release()
    return True, getattr(status, "Status", None)


def _malformed() -> Dataset:
    """A CT object without Study/Series Instance UIDs."""
    ds = Dataset()
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = generate_uid()
    ds.Modality = "CT"
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def test_listener_segments_a_sent_study_and_sends_the_seg_and_rtstruct_back(
    orthanc: Orthanc, tmp_path: Path, medswin_port: int
) -> None:
    series = write_series(tmp_path / "study", ct_image(seed=4))
    orthanc.upload(series.files)
    out = tmp_path / "out"
    formats = ("--output-format", "nifti", "dicom-seg", "rtstruct")
    process = _listen(
        medswin_port, out, orthanc, *formats, "--quiet-period", "1", "--max-studies", "1", "--timeout", "240"
    )
    try:
        # a stranger is refused at association; a malformed object from a known peer is refused alone
        assert _store(medswin_port, "STRANGER", pydicom.dcmread(series.files[0])) == (False, None)
        accepted, status = _store(medswin_port, orthanc.aet, _malformed())
        assert accepted and status not in (None, 0)
        started = time.perf_counter()
        study = orthanc.rest("POST", "/tools/lookup", data=series.study_uid).json()[0]["ID"]
        orthanc.rest("POST", "/modalities/medswin/store", json={"Resources": [study], "Synchronous": True})
        output = process.communicate(timeout=240)[0]
        print(f"listener round trip: {time.perf_counter() - started:.1f} s")
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert "1 of 1 series segmented" in output
    case = f"{series.study_uid}_s1"
    assert (out / f"{case}.dcm").exists() and (out / f"{case}.json").exists()
    assert not (out / ".incoming").exists()
    segs = orthanc.segmentations(series.study_uid)
    assert len(segs) == 1
    check_seg_references(segs[0], series.study_uid, series.series_uid, series.sop_instance_uids)
    (rtstruct,) = orthanc.segmentations(series.study_uid, "RTSTRUCT")
    assert rtstruct.SOPInstanceUID == pydicom.dcmread(out / f"{case}.rtstruct.dcm").SOPInstanceUID
    assert rtstruct.StudyInstanceUID == series.study_uid
    frame = rtstruct.ReferencedFrameOfReferenceSequence[0]
    referenced = frame.RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
    assert referenced.SeriesInstanceUID == series.series_uid
    assert {i.ReferencedSOPInstanceUID for i in referenced.ContourImageSequence} == set(
        series.sop_instance_uids
    )
    (note,) = json.loads((out / f"{case}.json").read_text())["sent"].values()
    assert note["status"] == "sent" and note["files"] == [f"{case}.dcm", f"{case}.rtstruct.dcm"]


def test_sigterm_stops_the_listener_cleanly(orthanc: Orthanc, tmp_path: Path) -> None:
    from orthanc import free_port

    port = free_port()
    out = tmp_path / "out"
    process = _listen(port, out, orthanc, "--timeout", "240")
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=30)[0]
    assert process.returncode == 0, output
    assert not (out / ".incoming").exists()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
