"""Credentials from the environment or a file, addresses without secrets, TLS with --ca-bundle."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from dicom_factory import ct_image, write_series
from orthanc import Orthanc, tls_proxy

from medswin.cli.main import main
from medswin.errors import PacsError
from medswin.pacs.auth import Credentials, load_credentials, make_session
from medswin.pacs.nodes import parse_address


def test_addresses_parse_and_refuse_secrets() -> None:
    web = parse_address("dicomweb:https://pacs:8042/dicom-web/?ModalitiesInStudy=CT&StudyDate=20261201-")
    assert (web.kind, web.url, web.query) == (
        "dicomweb",
        "https://pacs:8042/dicom-web",
        (("ModalitiesInStudy", "CT"), ("StudyDate", "20261201-")),
    )
    dimse = parse_address("dimse://PACS_AE@pacs:4242?StudyInstanceUID=1.2.3")
    assert (dimse.called_ae, dimse.host, dimse.port, str(dimse)) == (
        "PACS_AE",
        "pacs",
        4242,
        "dimse://PACS_AE@pacs:4242",
    )
    for bad, message in (
        ("dicomweb:https://u:p@pacs/dicom-web", "do not belong"),
        ("dicomweb:https://pacs/dicom-web?access_token=abc", "do not belong"),
        ("dimse://pacs:4242", "AE_TITLE@host:port"),
        ("dimse://A_VERY_LONG_AE_TITLE_X@pacs:4242", "not a DICOM AE title"),
        ("dicomweb:ftp://pacs/x", "http(s)"),
        ("dimse://AE@pacs:4242?Study-Date=1", "not a DICOM keyword"),
    ):
        with pytest.raises(PacsError, match=re.escape(message)):
            parse_address(bad)


def test_credentials_come_from_the_environment_or_a_private_file(tmp_path: Path) -> None:
    assert load_credentials({}).kind == "none"
    assert load_credentials({"MEDSWIN_PACS_TOKEN": "t0k"}) == Credentials(token="t0k")
    basic = load_credentials({"MEDSWIN_PACS_USER": "u", "MEDSWIN_PACS_PASSWORD": "pw-123"})
    assert basic.kind == "basic" and "pw-123" not in repr(basic) + str(basic)
    secret = tmp_path / "pacs.json"
    secret.write_text(json.dumps({"token": "file-t0k"}))
    secret.chmod(0o644)
    with pytest.raises(PacsError, match="readable by others"):
        load_credentials({"MEDSWIN_PACS_AUTH_FILE": str(secret)})
    secret.chmod(0o600)
    token = load_credentials({"MEDSWIN_PACS_AUTH_FILE": str(secret), "MEDSWIN_PACS_USER": "ignored"})
    assert token.kind == "bearer" and "file-t0k" not in repr(token)
    assert make_session(token).headers["Authorization"] == "Bearer file-t0k"
    with pytest.raises(PacsError, match="--ca-bundle must be a PEM file"):
        make_session(token, tmp_path / "missing.pem")


@pytest.fixture
def https(orthanc: Orthanc, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """Orthanc's DICOMweb behind HTTPS: (service root URL, the CA that signed its certificate)."""
    with tls_proxy(tmp_path_factory.mktemp("tls"), orthanc.http_port) as (port, ca):
        yield f"https://127.0.0.1:{port}/dicom-web", ca


def test_https_needs_the_hospital_ca_and_accepts_an_auth_file(
    orthanc: Orthanc,
    https: tuple[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, ca = https
    series = write_series(tmp_path / "study", ct_image(seed=7))
    orthanc.upload(series.files)
    secret = tmp_path / "pacs.json"
    secret.write_text(json.dumps({"user": orthanc.user, "password": orthanc.password}))
    secret.chmod(0o600)
    monkeypatch.setenv("MEDSWIN_PACS_AUTH_FILE", str(secret))
    source = f"dicomweb:{url}?StudyInstanceUID={series.study_uid}"
    out = tmp_path / "out"
    assert main(["-q", "predict", "-i", source, "-o", str(out), "-m", "demo"]) == 2
    assert "TLS certificate not trusted" in capsys.readouterr().err
    assert main(["-q", "predict", "-i", source, "-o", str(out), "-m", "demo", "--ca-bundle", str(ca)]) == 0
    assert (out / f"{series.study_uid}_s1.nii.gz").exists()
