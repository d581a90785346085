"""Patient names and ids from DICOM headers stay out of the logs unless ``--log-phi`` is given.

The study below is named after its patient and its series descriptions repeat the name and id, as
PACS exports often are, so every log line that mentions the folder or the description would leak
them. ``medswin -vv predict`` and ``medswin -vv info`` are run in-process (records captured with
``caplog``) and once as a real process (its stderr read): the identifiers appear only as ``[PHI]``,
and verbatim once ``--log-phi`` is passed.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hostile_factory import PATIENT_ID, PATIENT_NAME, ct_case, drop_slice, run_sandboxed, write_series

from medswin.io.phi import MASK, PHIFilter, forget_identifiers, mask_phi, remember_identifiers

REPOSITORY = Path(__file__).resolve().parents[2]
#: the forms a patient's name and id take in folder names and descriptions (a single part of the
#: name, "Phantom", is an ordinary word as often as a name and not masked on its own; the demo
#: card's own text says "phantoms").
IDENTIFIERS = (PATIENT_NAME, "Phantom_Test", PATIENT_ID)


def _leaks(text: str) -> list[str]:
    return [value for value in IDENTIFIERS if value.lower() in text.lower()]


@pytest.fixture
def registry():
    """An empty identifier registry for the test, emptied again afterwards."""
    forget_identifiers()
    yield
    forget_identifiers()


@pytest.fixture(scope="module")
def named_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A study folder named after its patient: one good series and one with a missing slice."""
    study = tmp_path_factory.mktemp("phi") / f"Phantom_Test_{PATIENT_ID}"
    description = f"{PATIENT_NAME} {PATIENT_ID} axial"
    first = write_series(study, ct_case(1), series_number=2, series_description=description)
    broken = write_series(
        study, ct_case(2), series_number=4, series_description=description, study_uid=first.study_uid
    )
    drop_slice(broken.files, 3)  # this case fails, and its reason names the study folder
    return study


def _messages(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(record.getMessage() for record in caplog.records)


@pytest.mark.parametrize("log_phi", [False, True], ids=["masked", "log-phi"])
def test_predict_logs_mask_patient_identifiers(
    named_study: Path, tiny_checkpoint: Path, tmp_path: Path, caplog, registry, log_phi: bool
) -> None:
    caplog.set_level(logging.DEBUG)
    flags = ["--log-phi"] if log_phi else []
    argv = [
        *flags,
        "-vv",
        "predict",
        "-i",
        str(named_study),
        "-o",
        str(tmp_path / "out"),
        "-m",
        str(tiny_checkpoint),
    ]
    run = run_sandboxed(argv, tmp_path, [named_study])
    assert run.code == 1  # the series with a missing slice failed; the other was predicted
    logged = _messages(caplog)
    assert "missing slice" in logged  # the failure is logged, with the study folder in it
    if log_phi:
        assert _leaks(logged) and _leaks(run.stderr)
    else:
        assert _leaks(logged) == [], logged
        assert _leaks(run.stderr) == [], run.stderr  # the per-case failure lines on stderr too
        assert MASK in logged and f"{MASK}_{MASK}_s4 failed (summary.csv line 3)" in run.stderr
        # ... and that line of the summary names the case and its folder as they are on disk
        rows = (tmp_path / "out" / "summary.csv").read_text().splitlines()
        assert rows[2].startswith(f"Phantom_Test_{PATIENT_ID}_s4,failed,")
    # the mask is gone once main returns: nothing stays installed on the root handlers
    assert not any(isinstance(f, PHIFilter) for h in logging.getLogger().handlers for f in h.filters)


@pytest.mark.parametrize("log_phi", [False, True], ids=["masked", "log-phi"])
def test_info_logs_mask_patient_identifiers(
    named_study: Path, tmp_path: Path, caplog, registry, log_phi: bool
) -> None:
    caplog.set_level(logging.DEBUG)
    flags = ["--log-phi"] if log_phi else []
    run = run_sandboxed([*flags, "-vv", "info", str(named_study), "--series", "x"], tmp_path, [named_study])
    assert run.code == 2  # no series "x": the error names the folder, and lists the descriptions
    logged = _messages(caplog)
    assert "no series with SeriesInstanceUID x" in logged
    if log_phi:
        assert _leaks(logged) and _leaks(run.stderr)
    else:
        assert _leaks(logged) == [] and _leaks(run.stderr) == [], logged + run.stderr
        assert f"medswin: error: {named_study.parent}/{MASK}_{MASK}: no series" in run.stderr


@pytest.mark.parametrize("log_phi", [False, True], ids=["masked", "log-phi"])
def test_stdout_follows_the_same_rule(named_study: Path, tmp_path: Path, registry, log_phi: bool) -> None:
    """``info`` prints the series descriptions (which repeat the patient's name and id) on stdout."""
    flags = ["--log-phi"] if log_phi else []
    run = run_sandboxed([*flags, "info", str(named_study)], tmp_path, [named_study])
    assert run.code == 0 and "axial" in run.stdout
    assert bool(_leaks(run.stdout)) == log_phi, run.stdout
    assert (f"'{MASK} {MASK} axial'" in run.stdout) != log_phi


def test_a_real_process_writes_no_identifier_to_stderr(named_study: Path, tmp_path: Path) -> None:
    """The same through the console script's own logging set-up (no pytest handlers in between)."""
    command = [sys.executable, "-m", "medswin", "-vv", "info", str(named_study)]
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=environment, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "series found; reading the largest" in done.stderr  # an INFO line with folder and description
    assert _leaks(done.stderr) == [], done.stderr
    assert MASK in done.stderr


def test_mask_covers_name_forms_and_leaves_other_words(registry) -> None:
    import pydicom

    ds = pydicom.Dataset()
    ds.PatientName = "Doe^John^Q"
    ds.PatientID = "12345678"
    ds.PatientBirthDate = "19700101"
    ds.OtherPatientIDs = ["AB", "X-998877"]  # "AB" is too short to identify anyone: never masked
    remember_identifiers(ds)
    text = "/data/DOE_JOHN_12345678/CT: John Doe (x-998877), born 19700101; Johnson, Doerr, AB, medswin"
    assert (
        mask_phi(text) == f"/data/{MASK}_{MASK}/CT: {MASK} ({MASK}), born {MASK}; Johnson, Doerr, AB, medswin"
    )

    # a single part of a name is an ordinary word as often as a name: it is not masked on its own
    ordinary = "John asked: is the doe in test_john/ a Q?"
    assert mask_phi(ordinary) == ordinary
    assert mask_phi("A12345678B, 12345678x") == "A12345678B, 12345678x"  # not inside longer ids

    record = logging.LogRecord(
        "medswin", logging.WARNING, __file__, 1, "case %s failed: %s", ("DOE_JOHN", "Q"), None
    )
    assert PHIFilter().filter(record) and record.getMessage() == f"case {MASK} failed: Q"


def test_mask_covers_ascii_and_caret_spellings_and_written_dates(registry) -> None:
    """A PACS export or a typist writes ``Müller^Hans-Jürgen`` in ASCII, and a date with separators."""
    import pydicom

    ds = pydicom.Dataset()
    ds.PatientName = "Müller^Hans-Jürgen"
    ds.PatientID = "4711"
    ds.PatientBirthDate = "19610315"
    remember_identifiers(ds)
    for spelling in ("Mueller Hans-Juergen", "MUELLER^HANS", "Muller Hans", "mueller.hans", "hans_mueller"):
        assert mask_phi(f"/in/{spelling}/ct: read") == f"/in/{MASK}/ct: read", spelling
    for date in ("1961-03-15", "15.03.1961", "03/15/1961", "15.3.1961", "1961/03/15"):
        assert mask_phi(f"born {date}, seen") == f"born {MASK}, seen", date
    # still whole words only, and a single name part is an ordinary word
    ordinary = "Hans asked Mueller about x1961-03-15 and 19610315123 in Muellerhans"
    assert mask_phi(ordinary) == ordinary
