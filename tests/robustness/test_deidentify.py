"""``medswin predict --deidentify``: a DICOM-SEG to share outside the hospital (DICOM PS3.15 basic profile).

Two series of one study named after their patient go through ``predict --output-format dicom-seg
--deidentify --case-names index``. Each SEG must hold no byte of the patient's name, id, birth
date, accession number or study date; its patient is the same pseudonym in both, its study UID is
new but shared, it references its own source series by that series' consistent new UID, it says
what was done (PatientIdentityRemoved, method, DCM 113100), highdicom reads it, and dciodvfy finds
no error in it. Without ``--deidentify`` the SEG keeps the source's identity (PACS needs it).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import highdicom as hd
import pydicom
from hostile_factory import PATIENT_ID, ct_case, run_sandboxed, write_series

from medswin.io.deidentify import METHOD, pseudonymous_uid

IDENTIFYING = (b"Phantom", b"Test", PATIENT_ID.encode(), b"19700101", b"ACC0001", b"20240102")


def _dciodvfy_errors(path: Path) -> list[str]:
    done = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=120)
    return [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("Error")]


def test_deidentified_segs_keep_a_study_together_and_nobody_in_it(
    tmp_path: Path, tiny_checkpoint: Path
) -> None:
    study = tmp_path / "inbox" / f"Phantom_Test_{PATIENT_ID}"
    first = write_series(study, ct_case(1), series_number=2)
    second = write_series(study, ct_case(2, "oblique"), series_number=5, study_uid=first.study_uid)
    out = tmp_path / "out"
    argv = ["-q", "predict", "-i", str(study), "-o", str(out), "-m", str(tiny_checkpoint)]
    argv += ["--output-format", "dicom-seg", "--deidentify", "--case-names", "index"]
    run = run_sandboxed(argv, tmp_path, [study])
    assert run.code == 0, run.stderr
    segs = sorted(out.glob("case-*.dcm"))
    assert len(segs) == 2
    key = (out / ".medswin" / "key").read_bytes()
    datasets = [pydicom.dcmread(path) for path in segs]
    for path, ds in zip(segs, datasets, strict=True):
        raw = path.read_bytes()
        assert [value for value in IDENTIFYING if value in raw] == [], path
        assert ds.PatientIdentityRemoved == "YES" and ds.DeidentificationMethod == METHOD
        assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
        assert str(ds.PatientName).startswith("ANON-") and ds.PatientID == str(ds.PatientName)
        assert ds.StudyInstanceUID == pseudonymous_uid(first.study_uid, key)
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert hd.seg.segread(path).number_of_segments == 5
        assert _dciodvfy_errors(path) == []
    assert datasets[0].PatientID == datasets[1].PatientID  # one patient, one pseudonym
    referenced = {ds.ReferencedSeriesSequence[0].SeriesInstanceUID for ds in datasets}
    assert referenced == {pseudonymous_uid(s.series_uid, key) for s in (first, second)}
    for ds in datasets:  # every source instance, under its own consistent new UID
        series = (
            first
            if ds.ReferencedSeriesSequence[0].SeriesInstanceUID == pseudonymous_uid(first.series_uid, key)
            else second
        )
        instances = {
            i.ReferencedSOPInstanceUID for i in ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence
        }
        assert instances == {pseudonymous_uid(pydicom.dcmread(f).SOPInstanceUID, key) for f in series.files}

    # the same folder again: names, pseudonyms and UIDs are stable, so nothing is redone
    assert run_sandboxed(argv, tmp_path, [study]).code == 0
    assert [p.read_bytes() for p in segs] == [p.read_bytes() for p in sorted(out.glob("case-*.dcm"))]


def test_without_deidentify_the_seg_keeps_the_source_identity(tmp_path: Path, tiny_checkpoint: Path) -> None:
    study = tmp_path / "inbox" / "study"
    series = write_series(study, ct_case(1))
    out = tmp_path / "out"
    argv = [
        "-q",
        "predict",
        "-i",
        str(study),
        "-o",
        str(out),
        "-m",
        str(tiny_checkpoint),
        "--output-format",
        "dicom-seg",
    ]
    assert run_sandboxed(argv, tmp_path, [study]).code == 0
    ds = pydicom.dcmread(out / "study.dcm")
    assert ds.PatientID == PATIENT_ID and ds.StudyInstanceUID == series.study_uid
    assert "PatientIdentityRemoved" not in ds
    assert _dciodvfy_errors(out / "study.dcm") == []
