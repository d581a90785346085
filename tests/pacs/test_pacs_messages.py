"""What ``medswin predict`` says when a PACS does not answer or a query finds nothing.

A node where nothing listens (a free port on 127.0.0.1) must read "did not answer", not an
association abort that blames medswin's AE title, and the case it segmented must be counted as
predicted (its SEG is on disk, only the send failed). A query that matches no study says so.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from dicom_factory import ct_image, write_series
from orthanc import Orthanc, free_port

from medswin.cli.main import main


def _summary(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "summary.csv", newline="") as stream:
        return {row["case"]: row for row in csv.DictReader(stream)}


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["dimse", "dicomweb"])
def test_sending_to_a_port_where_nothing_listens(tmp_path: Path, capsys, kind: str) -> None:
    write_series(tmp_path / "study", ct_image(seed=3))
    port = free_port()
    node = (
        f"dimse://PACS@127.0.0.1:{port}" if kind == "dimse" else f"dicomweb:http://127.0.0.1:{port}/dicom-web"
    )
    argv = ["predict", "-i", str(tmp_path / "study"), "-o", str(tmp_path / "out"), "-m", "demo"]
    assert main([*argv, "--send-to", node]) == 1
    printed = capsys.readouterr()
    row = _summary(tmp_path / "out")["study"]
    assert row["status"] == "failed" and row["reason"].startswith("study.dcm written, but not sent: "), row
    assert "did not answer" in row["reason"] and "AE title" not in row["reason"], row
    if kind == "dimse":
        assert f"127.0.0.1:{port}" in row["reason"] and "connection refused" in row["reason"], row
    assert (tmp_path / "out" / "study.dcm").exists()
    # segmented, only not sent: counted as predicted, and the failure says which
    assert (
        "1 case(s) predicted, 0 already finished, 1 failed (1 of them segmented, but the SEG not sent)"
        in (printed.out)
    )
    assert "did not answer" in printed.err


def test_a_query_that_matches_no_study_says_so(orthanc: Orthanc, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("MEDSWIN_PACS_USER", orthanc.user)
    monkeypatch.setenv("MEDSWIN_PACS_PASSWORD", orthanc.password)
    source = f"{orthanc.dimse}?StudyInstanceUID=1.2.826.0.1.3680043.10.999.1"
    code = main(["predict", "-i", source, "-o", str(tmp_path / "out"), "-m", "demo", "--ae-title", "MEDSWIN"])
    assert code == 2
    err = capsys.readouterr().err
    assert "no study matches StudyInstanceUID=1.2.826.0.1.3680043.10.999.1" in err, err
