"""Broken cases in one ``medswin predict`` batch: each fails alone, explained, and leaves nothing behind.

One input folder holds good cases and, between them, every kind of damage users bring: NIfTI files
cut short, bit-flipped, with NaN/infinite voxels or zero/negative voxel sizes; DICOM studies with a
missing, duplicated or unevenly spaced slice, two acquisitions under one series, only a report, or
pixel data no installed decoder reads; zips with ``../`` or absolute member names and zip bombs.
The batch is run once (module fixture) and each guarantee is its own test:

* the good cases finish (before and after the broken ones in the batch order);
* each broken case is ``failed`` in ``summary.csv`` with a reason naming its file and the problem,
  and is reported on stderr;
* the output folder holds exactly the good cases' files (no partial, zero-byte or hidden leftovers);
* the input folder is byte-identical afterwards, and nothing is written outside the output
  folder (working folder, temporary folder and the output's parent are checked).

A four-modality batch with a missing channel file and channels on two grids follows the same rules.
Killing a batch mid-way (SIGTERM/SIGKILL) and resuming it is covered in
``tests/batch/test_predict_batch.py`` and not repeated here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hostile_factory import (
    MODALITIES,
    CliRun,
    compress_unreadably,
    ct_case,
    drop_slice,
    duplicate_slice,
    flip_bit,
    run_sandboxed,
    shift_slices,
    summary_rows,
    truncate,
    with_pixdim,
    with_sform_column,
    with_voxel,
    write_nifti,
    write_report,
    write_series,
    zip_bomb,
    zip_bomb_of_many_members,
    zip_folder,
    zip_with_members,
)

from medswin.io import list_series, read_image, write_image


@dataclass(frozen=True)
class Broken:
    """A broken case: the file (or folder) its reason must name, and the problem it must state."""

    names: str
    problem: str  # regular expression


def _dicom_corpus(inbox: Path) -> dict[str, Broken]:
    study = write_series(inbox / "m_study", ct_case(3), series_number=3)
    write_series(inbox / "m_study", ct_case(4), series_number=7, study_uid=study.study_uid)
    write_report(inbox / "m_study" / "report.dcm", study.study_uid)  # a stray non-image object

    write_report(inbox / "report_only" / "sr.dcm")
    drop_slice(write_series(inbox / "missing_slice", ct_case(5), random_names=False).files, 5)
    duplicate_slice(write_series(inbox / "duplicate_slice", ct_case(6), random_names=False).files, 4)
    shift_slices(write_series(inbox / "uneven_spacing", ct_case(7), random_names=False).files, 6, 2.0)
    first = write_series(inbox / "two_acquisitions", ct_case(8))
    write_series(
        inbox / "two_acquisitions", ct_case(9), series_uid=first.series_uid, study_uid=first.study_uid
    )
    compress_unreadably(write_series(inbox / "htj2k_compressed", ct_case(10)).files)
    return {
        "report_only": Broken("report_only", "holds DICOM objects but no images"),
        "missing_slice": Broken("missing_slice", "1 missing slice"),
        "duplicate_slice": Broken(
            "duplicate_slice",
            r"copy_of_slice_0004\.dcm and slice_0004\.dcm|slice_0004\.dcm and copy_of_slice_0004\.dcm",
        ),
        "uneven_spacing": Broken("uneven_spacing", "slice step varies"),
        "two_acquisitions": Broken("two_acquisitions", "share a position with another"),
        "htj2k_compressed": Broken(
            "htj2k_compressed", "High-Throughput JPEG 2000.*no installed decoder reads"
        ),
    }


def _zip_corpus(inbox: Path, scratch: Path) -> dict[str, Broken]:
    slice_bytes = write_series(scratch / "zip_source", ct_case(11), random_names=False).files[0].read_bytes()
    zip_with_members(
        inbox / "zip_traversal.zip", {"export/slice.dcm": slice_bytes, "../../escaped.txt": b"escaped"}
    )
    zip_with_members(
        inbox / "zip_absolute.zip",
        {"export/slice.dcm": slice_bytes, str(scratch.resolve() / "escaped_absolute.txt"): b"escaped"},
    )
    zip_bomb(inbox / "zip_bomb.zip")
    zip_bomb_of_many_members(inbox / "zip_bomb_members.zip")
    truncate(zip_folder(scratch / "zip_source", inbox / "zip_damaged.zip"), 0.6)
    return {
        "zip_traversal": Broken("zip_traversal.zip", r"'\.\./\.\./escaped\.txt' points outside the archive"),
        "zip_absolute": Broken("zip_absolute.zip", "escaped_absolute.txt' points outside the archive"),
        "zip_bomb": Broken("zip_bomb.zip", "looks like a zip bomb"),
        "zip_bomb_members": Broken("zip_bomb_members.zip", "expand .* in total .* looks like a zip bomb"),
        "zip_damaged": Broken("zip_damaged.zip", "not a valid zip archive"),
    }


def _nifti_corpus(inbox: Path) -> dict[str, Broken]:
    truncate(write_nifti(inbox / "cut_short.nii.gz", 1))
    flipped = write_nifti(inbox / "bit_flipped.nii.gz", 2)
    flip_bit(flipped, flipped.stat().st_size // 2)
    flip_bit(write_nifti(inbox / "crc_flipped.nii.gz", 2), -6)  # in the gzip trailer's CRC-32
    with_voxel(inbox / "nan_voxel.nii.gz", np.nan)
    with_voxel(inbox / "inf_voxel.nii.gz", np.inf)
    with_pixdim(write_nifti(inbox / "zero_spacing.nii.gz", 3), axis=3, value=0.0)
    with_pixdim(write_nifti(inbox / "negative_spacing.nii", 4), axis=1, value=-2.4)
    with_sform_column(write_nifti(inbox / "flat_sform.nii.gz", 5), column=2, value=0.0)
    (inbox / "empty_file.nii.gz").write_bytes(b"")
    return {
        "cut_short": Broken("cut_short.nii.gz", "truncated or corrupt"),
        "bit_flipped": Broken("bit_flipped.nii.gz", "truncated or corrupt"),
        "crc_flipped": Broken("crc_flipped.nii.gz", "truncated or corrupt.*CRC check failed"),
        "nan_voxel": Broken("nan_voxel.nii.gz", r"1 voxel\(s\) are NaN or infinite.*is nan"),
        "inf_voxel": Broken("inf_voxel.nii.gz", r"1 voxel\(s\) are NaN or infinite.*is inf"),
        "zero_spacing": Broken("zero_spacing.nii.gz", r"pixdim\[3\] is 0 .*must be positive"),
        "negative_spacing": Broken("negative_spacing.nii", r"pixdim\[1\] is -2\.4 .*must be positive"),
        "flat_sform": Broken("flat_sform.nii.gz", "zero or invalid axis"),
        "empty_file": Broken("empty_file.nii.gz", r"the file is empty \(0 bytes\)"),
    }


@dataclass
class HostileBatch:
    run: CliRun
    inbox: Path
    out: Path
    rows: dict[str, dict[str, str]]
    good: dict[str, Path]  # case id -> the input it was read from
    broken: dict[str, Broken]
    scratch: Path


@pytest.fixture(scope="module")
def hostile_batch(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> HostileBatch:
    workspace = tmp_path_factory.mktemp("hostile")
    scratch = tmp_path_factory.mktemp("hostile_scratch")
    inbox = workspace / "inbox"
    inbox.mkdir()
    good = {"a_good": write_nifti(inbox / "a_good.nii.gz", 0, "RAS")}
    broken = {**_nifti_corpus(inbox), **_dicom_corpus(inbox), **_zip_corpus(inbox, scratch)}
    good.update({"m_study_s3": inbox / "m_study", "m_study_s7": inbox / "m_study"})
    out = workspace / "out"
    run = run_sandboxed(
        ["-q", "predict", "-i", str(inbox), "-o", str(out), "-m", str(tiny_checkpoint)], workspace, [inbox]
    )
    return HostileBatch(run, inbox, out, summary_rows(out / "summary.csv"), good, broken, scratch)


def test_the_batch_reports_failures_with_exit_code_1(hostile_batch: HostileBatch) -> None:
    assert hostile_batch.run.code == 1, hostile_batch.run.stderr
    assert sorted(hostile_batch.rows) == sorted({*hostile_batch.good, *hostile_batch.broken})


def test_good_cases_before_and_after_the_broken_ones_finish(hostile_batch: HostileBatch) -> None:
    order = sorted(hostile_batch.rows)
    assert (
        order.index("a_good") < order.index("cut_short") < order.index("m_study_s3") < order.index("zip_bomb")
    )
    for case, source in hostile_batch.good.items():
        row = hostile_batch.rows[case]
        assert row["status"] == "done", row
        labels = read_image(hostile_batch.out / f"{case}.nii.gz", kind="label")
        series_uid = None
        if source.is_dir():  # the study folder: which of its two series this case is
            number = {"m_study_s3": 3, "m_study_s7": 7}[case]
            series_uid = next(s.uid for s in list_series(source) if s.number == number)
        assert labels.same_grid(read_image(source, series_uid=series_uid), atol_mm=1e-4)


@pytest.mark.parametrize(
    "case",
    [
        "cut_short",
        "bit_flipped",
        "crc_flipped",
        "nan_voxel",
        "inf_voxel",
        "zero_spacing",
        "negative_spacing",
        "flat_sform",
        "empty_file",
        "report_only",
        "missing_slice",
        "duplicate_slice",
        "uneven_spacing",
        "two_acquisitions",
        "htj2k_compressed",
        "zip_traversal",
        "zip_absolute",
        "zip_bomb",
        "zip_bomb_members",
        "zip_damaged",
    ],
)
def test_a_broken_case_fails_naming_its_file_and_problem(hostile_batch: HostileBatch, case: str) -> None:
    expected = hostile_batch.broken[case]
    row = hostile_batch.rows[case]
    assert row["status"] == "failed", row
    assert str(hostile_batch.inbox / expected.names) in row["reason"], row["reason"]
    assert re.search(expected.problem, row["reason"]), row["reason"]
    assert row["output"] == ""
    text = (hostile_batch.out / "summary.csv").read_text(encoding="utf-8").splitlines()
    line = 1 + next(i for i, row in enumerate(text) if row.startswith(f"{case},"))
    failure = f"medswin: case {case} failed (summary.csv line {line}): {row['reason'].splitlines()[0]}"
    assert failure in hostile_batch.run.stderr
    assert not any(
        p.name.startswith(f"{case}.") or p.name.startswith(f".{case}.") for p in hostile_batch.out.iterdir()
    )


def test_the_output_folder_holds_only_the_good_cases_files(hostile_batch: HostileBatch) -> None:
    expected = {
        "summary.csv",
        *(f"{c}{ending}" for c in hostile_batch.good for ending in (".nii.gz", ".json")),
    }
    present = {p.name for p in hostile_batch.out.iterdir()}
    assert present == expected  # no partial outputs, no hidden .running/.partial leftovers
    assert all(p.stat().st_size > 0 for p in hostile_batch.out.iterdir())


def test_inputs_are_byte_identical_afterwards(hostile_batch: HostileBatch) -> None:
    assert hostile_batch.run.inputs_after == hostile_batch.run.inputs_before


def test_nothing_is_written_outside_the_output_folder(hostile_batch: HostileBatch) -> None:
    run = hostile_batch.run
    assert run.written_outside("out") == []  # workspace: the output's parent, the input, cwd/ and tmp/
    assert listing_empty(run.workspace / "cwd") and listing_empty(run.workspace / "tmp")
    assert not (hostile_batch.scratch / "escaped_absolute.txt").exists()
    assert not (run.workspace.parent / "escaped.txt").exists()


def listing_empty(folder: Path) -> bool:
    return not any(folder.iterdir())


# -------------------------------------------------------------------------- four-modality batch
@pytest.fixture(scope="module")
def multimodal_batch(
    tmp_path_factory: pytest.TempPathFactory, tiny_multimodal_checkpoint: Path
) -> HostileBatch:
    workspace = tmp_path_factory.mktemp("multimodal")
    inbox = workspace / "brats"
    inbox.mkdir()
    for case in ("BraTS_001", "BraTS_002", "BraTS_003", "BraTS_004", "BraTS_005"):
        for channel in range(len(MODALITIES)):
            write_image(ct_case(channel), inbox / f"{case}_{channel:04d}.nii.gz", dtype=np.float32)
    (inbox / "BraTS_002_0001.nii.gz").unlink()  # t1c missing
    (inbox / "BraTS_003_0003.nii.gz").unlink()  # the last channel, t2f, missing
    write_image(ct_case(2, "RAS"), inbox / "BraTS_005_0002.nii.gz", dtype=np.float32)  # another grid
    out = workspace / "out"
    argv = ["-q", "predict", "-i", str(inbox), "-o", str(out), "-m", str(tiny_multimodal_checkpoint)]
    run = run_sandboxed(argv, workspace, [inbox])
    broken = {
        "BraTS_002": Broken("BraTS_002_0001.nii.gz", r"channel 1 of case 'BraTS_002' is missing \(3 of 4"),
        "BraTS_003": Broken("BraTS_003_0003.nii.gz", r"channel 3 of case 'BraTS_003' is missing \(3 of 4"),
        "BraTS_005": Broken("BraTS_005_0002.nii.gz", "not on the grid of .*BraTS_005_0000.nii.gz"),
    }
    good = {c: inbox / f"{c}_0000.nii.gz" for c in ("BraTS_001", "BraTS_004")}
    return HostileBatch(run, inbox, out, summary_rows(out / "summary.csv"), good, broken, workspace)


def test_a_case_missing_one_modality_fails_alone(multimodal_batch: HostileBatch) -> None:
    batch = multimodal_batch
    assert batch.run.code == 1, batch.run.stderr
    assert {c: r["status"] for c, r in batch.rows.items()} == {
        "BraTS_001": "done",
        "BraTS_002": "failed",
        "BraTS_003": "failed",
        "BraTS_004": "done",
        "BraTS_005": "failed",
    }
    for case, expected in batch.broken.items():
        reason = batch.rows[case]["reason"]
        assert str(batch.inbox / expected.names) in reason and re.search(expected.problem, reason), reason
    expected_files = {"summary.csv", *(f"{c}{e}" for c in batch.good for e in (".nii.gz", ".json"))}
    assert {p.name for p in batch.out.iterdir()} == expected_files
    for case, source in batch.good.items():
        assert read_image(batch.out / f"{case}.nii.gz", kind="label").same_grid(
            read_image(source), atol_mm=1e-5
        )
    assert batch.run.inputs_after == batch.run.inputs_before
    assert batch.run.written_outside("out") == []
