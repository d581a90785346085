"""``medswin predict`` against a real Orthanc: query, retrieve, segment, store the SEG back."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import highdicom as hd
import pydicom
import pytest
from dicom_factory import ct_image, write_series
from orthanc import Orthanc

from medswin.cli.main import main


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch, orthanc: Orthanc) -> None:
    monkeypatch.setenv("MEDSWIN_PACS_USER", orthanc.user)
    monkeypatch.setenv("MEDSWIN_PACS_PASSWORD", orthanc.password)


def _upload_study(orthanc: Orthanc, folder: Path, seed: int = 0):
    series = write_series(folder, ct_image(seed=seed))
    orthanc.upload(series.files)
    return series


def _predict(source: str, out: Path, *extra: str) -> int:
    return main(["-q", "predict", "-i", source, "-o", str(out), "-m", "demo", *extra])


def _stored_seg(orthanc: Orthanc, study_uid: str) -> pydicom.Dataset:
    segs = [s for s in orthanc.series_of_study(study_uid) if s["MainDicomTags"].get("Modality") == "SEG"]
    assert len(segs) == 1, segs
    instance = segs[0]["Instances"][0]
    raw = orthanc.rest("GET", f"/instances/{instance}/file").content
    return pydicom.dcmread(__import__("io").BytesIO(raw))


def _check_seg(seg: pydicom.Dataset, series) -> None:
    seg = hd.seg.Segmentation.from_dataset(seg)
    assert seg.StudyInstanceUID == series.study_uid
    referenced = seg.ReferencedSeriesSequence[0]
    assert referenced.SeriesInstanceUID == series.series_uid
    assert {str(i.ReferencedSOPInstanceUID) for i in referenced.ReferencedInstanceSequence} == set(
        series.sop_instance_uids
    )


def _summary(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "summary.csv", newline="") as stream:
        return {row["case"]: row for row in csv.DictReader(stream)}


def test_dicomweb_round_trip_stores_the_seg_in_the_same_study(orthanc: Orthanc, tmp_path: Path) -> None:
    series = _upload_study(orthanc, tmp_path / "study")
    out = tmp_path / "out"
    started = time.perf_counter()
    source = f"dicomweb:{orthanc.dicomweb}?StudyInstanceUID={series.study_uid}"
    code = _predict(source, out, "--output-format", "dicom-seg", "--send-to", f"dicomweb:{orthanc.dicomweb}")
    print(f"DICOMweb round trip: {time.perf_counter() - started:.1f} s")
    assert code == 0
    case = f"{series.study_uid}_s1"
    assert _summary(out)[case]["status"] == "done"
    record = json.loads((out / f"{case}.json").read_text())
    assert record["sent"][f"dicomweb:{orthanc.dicomweb}"]["status"] == "sent"
    _check_seg(_stored_seg(orthanc, series.study_uid), series)
    assert not (out / ".medswin").exists()  # the retrieved copy (patient data) is gone
    # a rerun finds the case finished, and the query no longer matches the SEG it added (modality CT only)
    assert _predict(source, out, "--output-format", "dicom-seg") == 0
    assert _summary(out)[case]["status"] == "skipped"
