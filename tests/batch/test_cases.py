"""Case discovery: files, nnU-Net channel groups, DICOM studies and series, zips, case lists."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from batch_factory import ct_case, write_nifti_cases
from dicom_factory import write_report, write_series, zip_folder

from medswin.batch import discover_cases, read_case
from medswin.errors import GeometryError, ImageReadError
from medswin.io import write_image


def test_folder_of_files_one_case_each_ignoring_what_is_not_an_image(tmp_path: Path) -> None:
    write_nifti_cases(tmp_path, ["b_case", "a_case"])
    write_image(ct_case(7), tmp_path / "c_case.mha")
    (tmp_path / "dataset.json").write_text("{}")
    (tmp_path / ".DS_Store").write_bytes(b"\0")
    cases = discover_cases([tmp_path])
    assert [c.case_id for c in cases] == ["a_case", "b_case", "c_case"]
    assert all(len(c.paths) == 1 and c.series_uid is None for c in cases)


def test_nnunet_channel_files_group_into_one_case_each(tmp_path: Path) -> None:
    for case in ("brain_001", "brain_002"):
        for channel in range(2):
            write_image(ct_case(channel), tmp_path / f"{case}_{channel:04d}.nii.gz")
    cases = discover_cases([tmp_path])
    assert [(c.case_id, [p.name for p in c.paths]) for c in cases] == [
        ("brain_001", ["brain_001_0000.nii.gz", "brain_001_0001.nii.gz"]),
        ("brain_002", ["brain_002_0000.nii.gz", "brain_002_0001.nii.gz"]),
    ]
    image = read_case(cases[0])
    assert image.num_channels == 2 and image.shape == ct_case(0).shape
    (tmp_path / "brain_002_0001.nii.gz").rename(tmp_path / "brain_002_0002.nii.gz")
    cases = discover_cases([tmp_path])  # a gap fails that case when it is read, not the whole batch
    with pytest.raises(
        ImageReadError, match=r"brain_002_0001.nii.gz: no such file; channel 1 of case 'brain_002' is missing"
    ):
        read_case(cases[1])


def test_dicom_folder_with_two_series_is_two_cases(tmp_path: Path) -> None:
    study = tmp_path / "study"
    first = write_series(study, ct_case(1), series_number=3, series_description="AXIAL")
    second = write_series(study, ct_case(2), series_number=7, study_uid=first.study_uid)
    write_report(study / "report.dcm", first.study_uid)  # a non-image object beside the series
    cases = discover_cases([study])
    assert [(c.case_id, c.series_uid) for c in cases] == [
        ("study_s3", first.series_uid),
        ("study_s7", second.series_uid),
    ]
    image = read_case(cases[1])
    assert image.meta["dicom"]["SeriesInstanceUID"] == second.series_uid


def test_folder_of_dicom_studies_and_zips(tmp_path: Path) -> None:
    root = tmp_path / "studies"
    write_series(root / "patient_a", ct_case(1))
    write_series(tmp_path / "b", ct_case(2))
    zip_folder(tmp_path / "b", root / "patient_b.zip")
    write_nifti_cases(root, ["patient_c"])
    (root / "empty_study").mkdir()
    cases = discover_cases([root])
    assert [c.case_id for c in cases] == ["empty_study", "patient_a", "patient_b", "patient_c"]
    with pytest.raises(ImageReadError, match="empty_study"):  # reported when the case is read
        read_case(cases[0])


def test_case_lists_resolve_paths_beside_the_list(tmp_path: Path) -> None:
    images = tmp_path / "images"
    t1, t2 = write_nifti_cases(images, ["t1", "t2"])
    (tmp_path / "cases.txt").write_text("# one case per line\nimages/t1.nii.gz\n\n" + f"{t2}\n")
    assert [(c.case_id, c.paths) for c in discover_cases([tmp_path / "cases.txt"])] == [
        ("t1", (t1,)),
        ("t2", (t2,)),
    ]
    (tmp_path / "cases.csv").write_text("case,ct,mr\npatient1,images/t1.nii.gz,images/t2.nii.gz\n")
    [case] = discover_cases([tmp_path / "cases.csv"])
    assert case.case_id == "patient1" and case.paths == (t1, t2)
    (tmp_path / "bad.csv").write_text("case,ct,mr\npatient1,images/t1.nii.gz,\n")
    with pytest.raises(ImageReadError, match=r"bad.csv, line 2: 1 of 2 image columns"):
        discover_cases([tmp_path / "bad.csv"])


def test_channels_on_different_grids_are_refused(tmp_path: Path) -> None:
    a = write_image(ct_case(1), tmp_path / "a.nii.gz")
    moved = ct_case(1)
    moved.origin = tuple(np.asarray(moved.origin) + 3.0)
    b = write_image(moved, tmp_path / "b.nii.gz")
    [case] = discover_cases([a, b])
    with pytest.raises(GeometryError, match="b.nii.gz: not on the grid of"):
        read_case(case)


def test_refusals(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="no such file"):
        discover_cases([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageReadError, match="no case found"):
        discover_cases([tmp_path / "empty"])
    clash = tmp_path / "clash"
    write_image(ct_case(1), clash / "x.nii.gz")
    write_image(ct_case(1), clash / "x.mha")
    with pytest.raises(ImageReadError, match="two cases would write 'x'"):
        discover_cases([clash])


def test_output_folder_inside_the_input_is_not_a_case(tmp_path: Path) -> None:
    write_nifti_cases(tmp_path, ["one"])
    write_nifti_cases(tmp_path / "out", ["one_pred"])
    (tmp_path / "out" / "x.dcm").write_bytes(b"")  # whatever lies there is never read
    assert [c.case_id for c in discover_cases([tmp_path], skip=[tmp_path / "out"])] == ["one"]
