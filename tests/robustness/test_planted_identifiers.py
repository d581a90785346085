"""Nothing of the source's identity reaches any output of ``predict --deidentify --case-names hash``.

A value is planted in every attribute of DICOM PS3.15 Table E.1-1 that a CT header can hold, at the
top level and inside nested sequence items (:mod:`phi_planting`); the study folder is named after
the patient, as PACS exports are. One series is good, one lacks a slice and fails. Every byte of
every file in the output folder (SEG, NIfTI inside its gzip, records, summary.csv, the preview
PNG and its text chunks, the work area) and of stdout and stderr is searched for the planted values, the source UIDs and the folder's name.
The same planting straight through :func:`~medswin.io.deidentify.deidentify_dataset` checks the
walk into sequences that highdicom does not copy today.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import PIL.Image
import pydicom
import pytest
from hostile_factory import ct_case, drop_slice, run_sandboxed, summary_rows, write_series
from phi_planting import PLANTED_ID, Planter
from pydicom.dataset import Dataset

from medswin.io.deidentify import deidentify_dataset

FOLDER = f"Zwanenburg_Ottilie_{PLANTED_ID}"


def _planted_series(study: Path, planter: Planter, seed: int, number: int, study_uid: str | None = None):
    series = write_series(study, ct_case(seed), series_number=number, study_uid=study_uid)
    for path in series.files:
        ds = pydicom.dcmread(path)
        planter.plant(ds)
        ds.save_as(path)
    return series


def _contents(path: Path) -> bytes:
    """The file's bytes, and what compression hides: a NIfTI's header inside its gzip, a PNG's text."""
    data = path.name.encode() + path.read_bytes()
    if path.name.endswith(".gz"):
        data += gzip.decompress(path.read_bytes())
    if path.suffix == ".png":
        with PIL.Image.open(path) as png:
            data += repr(png.info).encode()
    return data


def _found(data: bytes, planted: set[bytes]) -> list[bytes]:
    lowered = data.lower()
    return sorted(value for value in planted if value.lower() in lowered)


@pytest.mark.slow
def test_no_planted_identifier_reaches_any_output(tmp_path: Path, tiny_checkpoint: Path) -> None:
    planter = Planter()
    study = tmp_path / "inbox" / FOLDER
    good = _planted_series(study, planter, 1, 2)
    broken = _planted_series(study, planter, 2, 4, study_uid=good.study_uid)
    drop_slice(broken.files, 3)  # this case fails, and its reason would name the folder
    planted = planter.values | {FOLDER.encode(), b"Zwanenburg_Ottilie", b"1961-03-15"}
    out = tmp_path / "out"
    argv = ["predict", "-i", str(study), "-o", str(out), "-m", str(tiny_checkpoint), "--preview"]
    argv += ["--deidentify", "--case-names", "hash", "--output-format", "nifti", "dicom-seg"]
    run = run_sandboxed(argv, tmp_path, [study])

    assert run.code == 1, run.stderr  # one case done, one failed
    rows = summary_rows(out / "summary.csv")
    assert sorted(r["status"] for r in rows.values()) == ["done", "failed"], rows
    [failed] = [r for r in rows.values() if r["status"] == "failed"]
    assert "missing" in failed["reason"], failed  # the reason still says what went wrong
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {p.suffix for p in files} >= {".dcm", ".gz", ".json", ".csv", ".png"}
    leaks = {str(p.relative_to(out)): _found(_contents(p), planted) for p in files}
    leaks["stdout"] = _found(run.stdout.encode(), planted)
    leaks["stderr"] = _found(run.stderr.encode(), planted)
    assert {where: found for where, found in leaks.items() if found} == {}
    seg = pydicom.dcmread(next(out.glob("*.dcm")))
    assert seg.PatientIdentityRemoved == "YES"
    assert all("InstitutionName" not in item for item in seg.ContributingEquipmentSequence)


def test_the_profile_reaches_every_depth(tmp_path: Path) -> None:
    planter = Planter()
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.10.1234.999001"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.10.1234.999002"
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.10.1234.999003"
    ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.10.1234.999004"
    planter.plant(ds)
    deep = ds.ContributingEquipmentSequence[0].RequestAttributesSequence[0]
    assert deep.InstitutionName.startswith("PLNT")  # planted two levels down
    ds.add_new((0x0009, 0x0010), "LO", "PLANTED PRIVATE CREATOR")
    # a SEG writes these itself (when it was made, its own series and device): the source's go
    for keyword, value in {"ContentDate": "20261207", "InstanceCreationDate": "20261207"}.items():
        setattr(ds, keyword, value)
    ds.ContentTime = ds.InstanceCreationTime = "101010"
    ds.SeriesDescription, ds.DeviceSerialNumber = "medswin segmentation", "0"
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    deidentify_dataset(ds, b"k" * 32)
    path = tmp_path / "deidentified.dcm"
    ds.save_as(path, enforce_file_format=True)
    raw = path.read_bytes()
    assert _found(raw, planter.values | {b"PLANTED PRIVATE"}) == []
    # the equipment items stay (their Manufacturer is no identifier), emptied of what identifies
    assert ds.ContributingEquipmentSequence[0].Manufacturer == "planted-equipment"
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2" and ds.PatientName == ds.PatientID
