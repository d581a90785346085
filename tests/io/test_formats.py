"""The one table of file formats and case names (medswin.io.formats), pinned."""

from __future__ import annotations

from pathlib import Path

import pytest

from medswin.io.formats import (
    FORMATS,
    case_name,
    dataset_case_id,
    endings,
    file_format,
    format_ending,
    split_channel,
)
from medswin.io.writers import WRITABLE_SUFFIXES


def test_the_table() -> None:
    assert [(f.ending, f.kind, f.writable) for f in FORMATS] == [
        (".nii.gz", "volume", True),
        (".nii", "volume", True),
        (".mha", "volume", True),
        (".mhd", "volume", True),
        (".nrrd", "volume", True),
        (".nhdr", "volume", False),
        (".dcm", "dicom", False),
        (".zip", "archive", False),
        (".png", "raster", False),
        (".tiff", "raster", False),
        (".tif", "raster", False),
        (".jpg", "raster", False),
        (".jpeg", "raster", False),
        (".bmp", "raster", False),
    ]
    assert WRITABLE_SUFFIXES == endings(writable=True) == (".nii.gz", ".nii", ".mha", ".mhd", ".nrrd")
    # an ending that ends another comes after it, so the longest one wins
    for i, earlier in enumerate(FORMATS):
        assert not any(earlier.ending.endswith(later.ending) for later in FORMATS[:i])


@pytest.mark.parametrize(
    ("name", "ending"),
    [("ct.nii.gz", ".nii.gz"), ("CT.NII.GZ", ".nii.gz"), ("a.b.Mhd", ".mhd"), ("x.gz", ".gz"), ("noext", "")],
)
def test_format_ending(name: str, ending: str) -> None:
    assert format_ending(Path("/data") / name) == ending


@pytest.mark.parametrize(
    ("name", "case", "dataset_case"),
    [
        ("c1.mhd", "c1", "c1"),
        ("c1.nhdr", "c1", "c1"),
        ("c1_0000.nii.gz", "c1_0000", "c1"),
        ("c1_0003.MHA", "c1_0003", "c1"),
        ("c1_seg.nii.gz", "c1_seg", "c1"),
        ("BraTS-GLI-00001-000-seg.nii.gz", "BraTS-GLI-00001-000-seg", "BraTS-GLI-00001-000"),
        ("scan.v2.nrrd", "scan.v2", "scan.v2"),
        ("study.zip", "study", "study"),
        ("series_dir", "series_dir", "series_dir"),
        ("_seg.nii", "_seg", "_seg"),  # never an empty case name
        (".nii.gz", ".nii.gz", ".nii.gz"),  # a hidden file, not an image
    ],
)
def test_case_names(name: str, case: str, dataset_case: str) -> None:
    assert case_name(name) == case
    assert dataset_case_id(name) == dataset_case


def test_channels_and_unknown_files() -> None:
    assert split_channel("c1_0000") == ("c1", 0)
    assert split_channel("c1_12") is None and split_channel("_0000") is None
    assert file_format("notes.txt") is None and file_format(".nii.gz") is None
    assert file_format("x.dcm").kind == "dicom"
