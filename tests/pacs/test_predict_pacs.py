"""``medswin predict`` against a real Orthanc: query, retrieve, segment, store the SEG back."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pydicom
import pytest
from dicom_factory import ct_image, write_series
from orthanc import Orthanc, check_seg_references, free_port

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
    segs = orthanc.segmentations(study_uid)
    assert len(segs) == 1, segs
    return segs[0]


def _check_seg(seg: pydicom.Dataset, series) -> None:
    check_seg_references(seg, series.study_uid, series.series_uid, series.sop_instance_uids)


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


def test_dimse_round_trip_with_c_get_and_c_store(orthanc: Orthanc, tmp_path: Path) -> None:
    series = _upload_study(orthanc, tmp_path / "study", seed=1)
    out = tmp_path / "out"
    started = time.perf_counter()
    source = f"{orthanc.dimse}?StudyInstanceUID={series.study_uid}"
    assert _predict(source, out, "--ae-title", "MEDSWIN", "--send-to", orthanc.dimse) == 0
    print(f"DIMSE round trip: {time.perf_counter() - started:.1f} s")
    case = f"{series.study_uid}_s1"
    assert set(json.loads((out / f"{case}.json").read_text())["files"]) == {f"{case}.nii.gz", f"{case}.dcm"}
    _check_seg(_stored_seg(orthanc, series.study_uid), series)


def _with_study_date(series, date: str) -> None:
    for path in series.files:
        dataset = pydicom.dcmread(path)
        dataset.StudyDate = date
        dataset.save_as(path)


def test_a_query_by_date_yields_one_case_per_ct_series(orthanc: Orthanc, tmp_path: Path) -> None:
    """Studies from 20261201 on match; an older one does not; series of other modalities are no cases."""
    new = [write_series(tmp_path / f"new{k}", ct_image(seed=k)) for k in range(2)]
    old = write_series(tmp_path / "old", ct_image(seed=5))
    mr = write_series(
        tmp_path / "mr", ct_image(seed=6), modality="MR", study_uid=new[0].study_uid, series_number=7
    )
    for written, date in ((new[0], "20261203"), (new[1], "20261215"), (old, "20261130"), (mr, "20261203")):
        _with_study_date(written, date)
        orthanc.upload(written.files)
    out = tmp_path / "out"
    source = f"dicomweb:{orthanc.dicomweb}?ModalitiesInStudy=CT&StudyDate=20261201-"
    assert _predict(source, out) == 0
    assert set(_summary(out)) == {f"{s.study_uid}_s1" for s in new}


def test_a_refused_send_keeps_the_seg_and_a_rerun_retries_only_the_send(
    orthanc: Orthanc, tmp_path: Path
) -> None:
    series = _upload_study(orthanc, tmp_path / "study", seed=2)
    out = tmp_path / "out"
    source = f"{orthanc.dimse}?StudyInstanceUID={series.study_uid}"
    wrong = f"dimse://NOT_ORTHANC@127.0.0.1:{orthanc.dicom_port}"
    assert _predict(source, out, "--send-to", wrong) == 1
    case = f"{series.study_uid}_s1"
    row = _summary(out)[case]
    assert row["status"] == "failed" and "association rejected" in row["reason"], row
    record = json.loads((out / f"{case}.json").read_text())
    assert record["sent"][wrong]["status"] == "failed"
    seg_bytes = (out / f"{case}.dcm").read_bytes()
    assert not [
        s for s in orthanc.series_of_study(series.study_uid) if s["MainDicomTags"]["Modality"] == "SEG"
    ]
    # the rerun predicts nothing (same SEG bytes, same timings) and sends the SEG it has
    assert _predict(source, out, "--send-to", orthanc.dimse) == 0
    again = json.loads((out / f"{case}.json").read_text())
    assert (out / f"{case}.dcm").read_bytes() == seg_bytes
    assert again["timings_s"] == record["timings_s"]
    assert again["sent"][orthanc.dimse]["status"] == "sent"
    assert _summary(out)[case]["status"] == "skipped"
    _check_seg(_stored_seg(orthanc, series.study_uid), series)


def test_an_unknown_ae_title_is_refused_by_name(
    orthanc: Orthanc, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = f"{orthanc.dimse}?StudyInstanceUID=1.2.3"
    assert _predict(source, tmp_path / "out", "--ae-title", "STRANGER") == 2
    error = capsys.readouterr().err
    assert "association rejected" in error and "'STRANGER'" in error and orthanc.dimse in error


def test_a_wrong_password_is_reported_without_secrets(
    orthanc: Orthanc, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MEDSWIN_PACS_PASSWORD", "wrong-Secret-42")
    source = f"dicomweb:{orthanc.dicomweb}?StudyInstanceUID=1.2.3"
    assert main(["-vv", "predict", "-i", source, "-o", str(tmp_path / "out"), "-m", "demo"]) == 2
    captured = capsys.readouterr()
    assert "HTTP 401" in captured.err
    assert "wrong-Secret-42" not in captured.out + captured.err


def test_credentials_never_reach_logs_records_or_summaries(
    orthanc: Orthanc, tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    series = _upload_study(orthanc, tmp_path / "study", seed=3)
    out = tmp_path / "out"
    source = f"dicomweb:{orthanc.dicomweb}?StudyInstanceUID={series.study_uid}"
    with caplog.at_level("DEBUG"):
        assert (
            main(
                [
                    "-vv",
                    "predict",
                    "-i",
                    source,
                    "-o",
                    str(out),
                    "-m",
                    "demo",
                    "--send-to",
                    source.split("?")[0],
                ]
            )
            == 0
        )
    captured = capsys.readouterr()
    written = "".join(p.read_text(errors="replace") for p in out.rglob("*") if p.suffix in (".json", ".csv"))
    for text in (captured.out, captured.err, caplog.text, written):
        assert orthanc.password not in text
        assert "Authorization" not in text


def test_credentials_in_the_address_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _predict("dicomweb:http://user:pw@127.0.0.1:1/dicom-web?StudyInstanceUID=1", tmp_path / "o") == 2
    assert "do not belong in the address" in capsys.readouterr().err


def test_each_retrieved_case_is_deleted_when_done_and_a_vanished_series_fails_alone(
    orthanc: Orthanc, tmp_path: Path
) -> None:
    """Through the Python API: the work copy of a case is gone once it is finished; a series deleted
    from the PACS between query and retrieval fails that case only."""
    from medswin.batch import BatchOptions, discover_cases, run_batch
    from medswin.batch.cases import case_scratch
    from medswin.batch.folder import OutputLock
    from medswin.inference import Predictor
    from medswin.pacs.auth import load_credentials
    from medswin.pacs.base import PacsSettings

    first = write_series(tmp_path / "a", ct_image(seed=8), series_number=3)
    second = write_series(tmp_path / "b", ct_image(seed=9), series_number=4, study_uid=first.study_uid)
    orthanc.upload([*first.files, *second.files])
    settings = PacsSettings(credentials=load_credentials())
    cases = discover_cases(
        [f"dicomweb:{orthanc.dicomweb}?StudyInstanceUID={first.study_uid}"], modality="CT", pacs=settings
    )
    assert [c.case_id for c in cases] == [f"{first.study_uid}_s3", f"{first.study_uid}_s4"]
    vanished = next(
        s["ID"] for s in orthanc.series_of_study(first.study_uid) if s["MainDicomTags"]["SeriesNumber"] == "4"
    )
    orthanc.rest("DELETE", f"/series/{vanished}")
    out = tmp_path / "out"
    work = OutputLock(out).work
    leftovers: dict[str, bool] = {}

    def on_case(outcome, done: int, total: int) -> None:
        leftovers[outcome.case_id] = case_scratch(work, outcome.case_id).exists()

    result = run_batch(Predictor("demo"), cases, out, BatchOptions(), on_case=on_case)
    assert {o.case_id: o.status for o in result.outcomes} == {
        cases[0].case_id: "done",
        cases[1].case_id: "failed",
    }
    assert orthanc.dicomweb in result.failed[0].reason
    assert leftovers == {cases[0].case_id: False, cases[1].case_id: False}


def test_a_query_by_patient_id_keeps_it_out_of_the_logs(
    orthanc: Orthanc, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from medswin.io.phi import forget_identifiers

    series = _upload_study(orthanc, tmp_path / "study", seed=10)
    patient = "MEDSWIN-TEST-0001"  # the factory's PatientID
    source = f"dicomweb:{orthanc.dicomweb}?PatientID={patient}&StudyInstanceUID={series.study_uid}"
    forget_identifiers()
    try:
        with caplog.at_level("DEBUG"):
            assert main(["-vv", "predict", "-i", source, "-o", str(tmp_path / "out"), "-m", "demo"]) == 0
    finally:
        forget_identifiers()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "[PHI]" in logged  # the request URLs were logged, masked
    assert patient not in logged


def test_dimse_retrieval_by_c_move_for_a_pacs_without_c_get(
    orthanc: Orthanc, tmp_path: Path, medswin_port: int
) -> None:
    """Orthanc knows MEDSWIN at 127.0.0.1:<medswin_port>; medswin receives the moved series there."""
    series = _upload_study(orthanc, tmp_path / "study", seed=11)
    out = tmp_path / "out"
    source = f"{orthanc.dimse}?StudyInstanceUID={series.study_uid}"
    # receiving on a port the PACS does not send to: the move fails and says so
    assert _predict(source, tmp_path / "elsewhere", "--move-port", f"127.0.0.1:{free_port()}") == 1
    reason = _summary(tmp_path / "elsewhere")[f"{series.study_uid}_s1"]["reason"]
    assert "retrieval (C-MOVE) failed" in reason, reason
    assert _predict(source, out, "--move-port", f"127.0.0.1:{medswin_port}") == 0
    record = json.loads((out / f"{series.study_uid}_s1.json").read_text())
    assert record["status"] == "done" and record["inputs"] == [series.series_uid]
