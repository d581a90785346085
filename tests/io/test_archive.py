"""Zip extraction refuses path traversal, absolute paths, symbolic links and zip bombs."""

from __future__ import annotations

import os
import stat
import zipfile

import pytest
from dicom_factory import ct_image, write_series, zip_folder

from medswin.errors import ImageReadError
from medswin.io import read_image
from medswin.io.archive import extract_zip, extracted_zip


def _zip(path, members: dict[str, bytes]):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


@pytest.mark.parametrize(
    "name", ["../evil.dcm", "a/../../evil.dcm", "/etc/evil.dcm", "C:/evil.dcm", "..\\evil.dcm"]
)
def test_members_escaping_the_folder_are_refused_before_anything_is_written(tmp_path, name):
    archive = _zip(tmp_path / "bad.zip", {"ok.dcm": b"x" * 10, name: b"payload"})
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(ImageReadError, match=r"bad\.zip: zip member .* points outside"):
        extract_zip(archive, target)
    assert os.listdir(target) == []
    assert not (tmp_path / "evil.dcm").exists()
    with pytest.raises(ImageReadError, match=r"bad\.zip"):
        read_image(archive)


def test_symbolic_links_are_refused(tmp_path):
    archive_path = tmp_path / "link.zip"
    with zipfile.ZipFile(archive_path, "w") as archive:
        info = zipfile.ZipInfo("series/link.dcm")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, "/etc/passwd")
    with pytest.raises(ImageReadError, match="symbolic link"):
        extract_zip(archive_path, tmp_path / "out")


def test_zip_bombs_are_refused(tmp_path):
    archive = _zip(tmp_path / "bomb.zip", {"zeros.dcm": b"\0" * (8 * 2**20)})
    with pytest.raises(ImageReadError, match=r"bomb\.zip: zip member 'zeros\.dcm' expands \d+×.*zip bomb"):
        extract_zip(archive, tmp_path / "out")
    small = _zip(tmp_path / "big.zip", {"a.dcm": os.urandom(5000), "b.dcm": os.urandom(5000)})
    with pytest.raises(ImageReadError, match=r"big\.zip: archive expands to more than"):
        extract_zip(small, tmp_path / "out2", max_total_bytes=8000)


def test_not_a_zip_is_reported(tmp_path):
    (tmp_path / "fake.zip").write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(ImageReadError, match=r"fake\.zip: not a valid zip archive"):
        read_image(tmp_path / "fake.zip")


def test_extracted_folder_is_removed_afterwards(tmp_path):
    write_series(tmp_path / "ct", ct_image(shape=(8, 8, 3)))
    archive = zip_folder(tmp_path / "ct", tmp_path / "ct.zip")
    with extracted_zip(archive) as folder:
        assert len(list(folder.rglob("*.dcm"))) == 3
    assert not folder.exists()
    empty = _zip(tmp_path / "empty.zip", {"readme.txt": b"nothing here"})
    with pytest.raises(ImageReadError, match=r"empty\.zip: no DICOM files found"):
        read_image(empty)
