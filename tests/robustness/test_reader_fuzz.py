"""Fuzzed files through ``read_image`` and ``list_series``: medswin's own errors only, and no hang.

Each test mutates a tiny good file (bytes overwritten, the file cut short) or a DICOM header
(attributes given values scanners never write, or removed) and reads the result. Anything but a
:class:`~medswin.errors.MedSwinError` subclass, or a read that does not return within the
watchdog's limit, fails the test. Hypothesis runs derandomized with no example database, so CI sees
the same inputs on every run, and each test is bounded by its example count.
"""

from __future__ import annotations

import contextlib
import resource
import shutil
import signal
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hostile_factory import write_series, zip_folder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag
from pydicom.uid import RLELossless

from medswin.data.phantom import make_ct_phantom
from medswin.errors import MedSwinError
from medswin.io import list_series, read_image, write_image

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::RuntimeWarning")

FUZZ = settings(
    max_examples=60,
    deadline=10_000,  # ms per example: generous, the reads take milliseconds; a hang trips the watchdog
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
#: seconds one read may take before it counts as a hang.
WATCHDOG_S = 30


#: address space a read may add before its allocation fails (a damaged header asking for gigabytes).
HEADROOM_BYTES = 4 * 2**30


class ReaderHung(AssertionError):
    """A reader did not return within the watchdog's limit."""


def _address_space() -> int | None:
    """This process's virtual memory size in bytes (Linux), else None."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


@contextlib.contextmanager
def watchdog(what: str, seconds: int = WATCHDOG_S) -> Iterator[None]:
    """Fail, instead of hanging or exhausting the machine, when a read runs away.

    A read that takes longer than ``seconds`` raises :class:`ReaderHung`; one that asks for more
    than :data:`HEADROOM_BYTES` of new address space gets a MemoryError (which fails the test too,
    not being a MedSwinError) rather than the out-of-memory killer's attention on a shared CI host.
    """

    def expire(signum: int, frame: object) -> None:
        raise ReaderHung(f"reading {what} did not finish within {seconds} s")

    limits = None
    used = _address_space()
    if used is not None:
        limits = resource.getrlimit(resource.RLIMIT_AS)
        hard = limits[1]
        soft = used + HEADROOM_BYTES
        resource.setrlimit(
            resource.RLIMIT_AS, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard)
        )
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if limits is not None:
            resource.setrlimit(resource.RLIMIT_AS, limits)


def read_or_refuse(path: Path, **options: object) -> None:
    """Read ``path``; a MedSwinError is a clean refusal, anything else propagates and fails the test."""
    with watchdog(str(path)):
        try:
            read_image(path, **options)  # type: ignore[arg-type]
        except MedSwinError as error:
            assert str(error), "a refusal must say why"


def list_or_refuse(path: Path) -> None:
    with watchdog(str(path)):
        try:
            list_series(path)
        except MedSwinError as error:
            assert str(error)


# ----------------------------------------------------------------------------------- seed files
@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Tiny good files of every readable format (format name -> bytes)."""
    folder = tmp_path_factory.mktemp("seeds")
    image = make_ct_phantom(shape=(6, 5, 4), spacing=(1.5, 1.2, 3.0), orientation="oblique", seed=1).image
    image = image.with_array(np.round(image.array))
    files = {
        "nii": write_image(image, folder / "seed.nii", dtype=np.int16),
        "nii.gz": write_image(image, folder / "seed.nii.gz", dtype=np.int16),
        "mha": write_image(image, folder / "seed.mha", dtype=np.int16),
        "nrrd": write_image(image, folder / "seed.nrrd", dtype=np.int16),
    }
    slices = make_ct_phantom(shape=(6, 5, 3), spacing=(1.5, 1.2, 3.0), seed=1).image
    series = write_series(folder / "series", slices, random_names=False)
    files["dcm"] = series.files[1]
    compressed = pydicom.dcmread(series.files[2])
    compressed.compress(RLELossless)  # pixel data pydicom decodes itself, GDCM as fallback
    compressed.save_as(folder / "rle.dcm", enforce_file_format=True)
    files["rle.dcm"] = folder / "rle.dcm"
    files["zip"] = zip_folder(series.folder, folder / "seed.zip")
    return {name: path.read_bytes() for name, path in files.items()}


@pytest.fixture(scope="module")
def series_folder(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three good CT slices; tests copy them and damage one."""
    image = make_ct_phantom(shape=(6, 5, 3), spacing=(1.5, 1.2, 3.0), seed=2).image
    return write_series(tmp_path_factory.mktemp("slices"), image, random_names=False).files


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _mutate(data: bytes, overwrites: list[tuple[int, int]], keep: float | None) -> bytes:
    damaged = bytearray(data)
    for position, value in overwrites:
        damaged[position % len(damaged)] = value
    if keep is not None:
        damaged = damaged[: int(len(damaged) * keep)]
    return bytes(damaged)


overwrites = st.lists(st.tuples(st.integers(0, 2**20), st.integers(0, 255)), min_size=1, max_size=8)
keep = st.none() | st.floats(0.0, 1.0)


# ----------------------------------------------------------------------------------- byte fuzzing
@pytest.mark.parametrize("fmt", ["nii", "nii.gz", "mha", "nrrd", "dcm", "rle.dcm", "zip"])
@FUZZ
@given(changes=overwrites, cut=keep, as_label=st.booleans())
def test_damaged_bytes_are_read_or_refused_cleanly(
    fmt: str,
    seeds: dict[str, bytes],
    scratch: Path,
    changes: list[tuple[int, int]],
    cut: float | None,
    as_label: bool,
) -> None:
    path = scratch / f"damaged.{fmt}"
    path.write_bytes(_mutate(seeds[fmt], changes, cut))
    read_or_refuse(path, kind="label" if as_label else "intensity")
    if fmt in ("dcm", "rle.dcm", "zip"):
        list_or_refuse(path)


@FUZZ
@given(changes=overwrites, header_only=st.booleans())
def test_damaged_nifti_headers_are_read_or_refused_cleanly(
    seeds: dict[str, bytes], scratch: Path, changes: list[tuple[int, int]], header_only: bool
) -> None:
    """Overwrites aimed at the 348-byte header (dims, datatype, pixdim, offsets, forms) of a .nii."""
    aimed = [(p % 348, v) for p, v in changes] if header_only else changes
    path = scratch / "header.nii"
    path.write_bytes(_mutate(seeds["nii"], aimed, None))
    read_or_refuse(path)


_NUMBER = st.sampled_from(
    ["0", "-1", "1", "2", "65536", "1000000000", "99999999999", "nan", "inf", "-inf", "1e308", "abc", "", " "]
)
_NUMBERS = st.lists(
    _NUMBER | st.floats(allow_nan=True, allow_infinity=True, width=32).map(lambda v: f"{v:.6g}"), max_size=7
).map("\\".join)
#: header attributes and the values a broken exporter could write there (raw bytes, never validated).
_ATTRIBUTES: dict[str, st.SearchStrategy] = {
    "Rows": st.integers(0, 65535),
    "Columns": st.integers(0, 65535),
    "BitsAllocated": st.sampled_from([0, 1, 7, 8, 12, 16, 24, 32, 64, 65535]),
    "BitsStored": st.sampled_from([0, 1, 8, 12, 16, 17, 32]),
    "HighBit": st.sampled_from([0, 7, 11, 15, 31, 255]),
    "PixelRepresentation": st.integers(0, 3),
    "SamplesPerPixel": st.integers(0, 4),
    "NumberOfFrames": _NUMBER,
    "InstanceNumber": _NUMBER,
    "PixelSpacing": _NUMBERS,
    "ImagePositionPatient": _NUMBERS,
    "ImageOrientationPatient": _NUMBERS,
    "RescaleSlope": _NUMBER,
    "RescaleIntercept": _NUMBER,
    "SliceThickness": _NUMBER,
    "PhotometricInterpretation": st.sampled_from(
        ["MONOCHROME1", "RGB", "PALETTE COLOR", "YBR_FULL", "XYZ", ""]
    ),
    "Modality": st.sampled_from(["CT", "DX", "SEG", "SR", ""]),
    "SOPClassUID": st.sampled_from(
        ["1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.66.4", "1.2.3", ""]
    ),
    "SeriesInstanceUID": st.sampled_from(["", "1.2.3.4"]),
}


def _raw_element(keyword: str, value: object) -> RawDataElement:
    """The attribute as raw bytes on disk, so no validation stands between the fuzzer and the reader."""
    tag = Tag(keyword)
    vr = dictionary_VR(tag)
    if vr == "US":
        encoded = struct.pack("<H", int(value))  # type: ignore[arg-type]
    else:
        encoded = str(value).encode("ascii", "replace")
        encoded += b" " * (len(encoded) % 2)
    return RawDataElement(tag, vr, len(encoded), encoded, 0, False, True)


@FUZZ
@given(
    changes=st.dictionaries(st.sampled_from(sorted(_ATTRIBUTES)), st.none(), min_size=1, max_size=4).flatmap(
        lambda keys: st.fixed_dictionaries({k: st.none() | _ATTRIBUTES[k] for k in keys})
    ),
    victim=st.integers(0, 2),
    pixels_kept=st.none() | st.floats(0.0, 1.0),
    allow_gaps=st.booleans(),
)
def test_odd_dicom_headers_are_read_or_refused_cleanly(
    series_folder: list[Path],
    scratch: Path,
    changes: dict[str, object],
    victim: int,
    pixels_kept: float | None,
    allow_gaps: bool,
) -> None:
    """One slice of a three-slice series with attributes set to odd values (None: removed)."""
    folder = scratch / "series"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    for path in series_folder:
        shutil.copyfile(path, folder / path.name)
    target = folder / series_folder[victim].name
    ds = pydicom.dcmread(target)
    for keyword, value in changes.items():
        if value is None:
            if keyword in ds:
                del ds[keyword]
        else:
            ds[Tag(keyword)] = _raw_element(keyword, value)
    if pixels_kept is not None:
        ds.PixelData = ds.PixelData[: int(len(ds.PixelData) * pixels_kept) // 2 * 2]
    ds.save_as(target, enforce_file_format=True)
    read_or_refuse(target, allow_gaps=allow_gaps)
    read_or_refuse(folder, allow_gaps=allow_gaps)
    list_or_refuse(folder)


# ------------------------------------------------------------- what the fuzzer found, pinned
def _slice_with(series_folder: list[Path], scratch: Path, **values: object) -> Path:
    """A copy of the first good slice with raw attribute ``values`` (None removes one)."""
    ds = pydicom.dcmread(series_folder[0])
    for keyword, value in values.items():
        if value is None:
            del ds[keyword]
        else:
            ds[Tag(keyword)] = _raw_element(keyword, value)
    path = scratch / "pinned.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        # each of these once allocated gigabytes or built a billion frame records before failing
        ({"NumberOfFrames": "1000000000"}, r"declares 1000000000 frame\(s\) of 5×6 pixels.*holds \d+ bytes"),
        ({"Rows": 65535, "Columns": 65535}, r"declares 1 frame\(s\) of 65535×65535 pixels"),
        ({"NumberOfFrames": "abc"}, r"NumberOfFrames 'abc' is not a positive whole number"),
        ({"Rows": 0}, "Rows 0 is not a positive number of pixels"),
        ({"PixelSpacing": "1.2"}, r"PixelSpacing \[1\.2\] must be 2 finite numbers"),
        ({"PixelSpacing": "0\\0"}, r"PixelSpacing \[0\.0, 0\.0\] must be positive"),
        ({"ImagePositionPatient": "0"}, r"ImagePositionPatient \[0\.0\] must be 3 finite numbers"),
        (
            {"ImageOrientationPatient": "1\\0\\0\\0\\nan\\0"},
            "ImageOrientationPatient .* must be 6 finite numbers",
        ),
        ({"RescaleSlope": "inf"}, "RescaleSlope/RescaleIntercept inf/-1024.0 must be finite numbers"),
    ],
    ids=[
        "frames",
        "matrix",
        "frames-text",
        "rows",
        "spacing-1",
        "spacing-0",
        "position",
        "orientation",
        "slope",
    ],
)
def test_impossible_dicom_headers_are_refused_before_decoding(
    series_folder: list[Path], scratch: Path, values: dict[str, object], problem: str
) -> None:
    path = _slice_with(series_folder, scratch, **values)
    with watchdog(str(path)), pytest.raises(MedSwinError, match=problem) as caught:
        read_image(path)
    assert str(path) in str(caught.value)


def test_values_pydicom_cannot_parse_name_the_attribute(series_folder: list[Path], scratch: Path) -> None:
    path = _slice_with(series_folder, scratch, InstanceNumber="inf")
    with pytest.raises(
        MedSwinError, match=r"pinned.dcm: damaged DICOM file \(InstanceNumber unreadable, OverflowError"
    ):
        read_image(path)
    folder = scratch / "only_damaged"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    shutil.copyfile(path, folder / "slice.dcm")
    with pytest.raises(
        MedSwinError, match=r"only_damaged: no readable DICOM image; 1 damaged DICOM file\(s\)"
    ):
        read_image(folder)


def test_a_huge_integral_rescale_gives_float_voxels(series_folder: list[Path], scratch: Path) -> None:
    image = read_image(_slice_with(series_folder, scratch, RescaleIntercept="1e300"))
    assert image.array.dtype == np.float64 and np.all(np.isfinite(image.array))


def test_damaged_pixel_data_of_a_decodable_syntax_is_not_handed_to_gdcm(
    seeds: dict[str, bytes], scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GDCM crashed the whole process (SIGFPE) on damaged RLE data; pydicom's refusal now stands."""
    import SimpleITK

    def crash(*args: object, **kwargs: object) -> None:
        raise AssertionError("GDCM must not be tried on data pydicom has a decoder for")

    monkeypatch.setattr(SimpleITK, "ReadImage", crash)
    data = bytearray(seeds["rle.dcm"])
    fragment = data.rfind(b"\xfe\xff\x00\xe0")  # the item holding the RLE frame
    struct.pack_into("<I", data, fragment + 8, 99)  # its header now claims 99 segments
    path = scratch / "damaged_rle.dcm"
    path.write_bytes(bytes(data))
    with pytest.raises(
        MedSwinError, match=r"cannot decode the RLE Lossless pixel data .*truncated or corrupt"
    ):
        read_image(path)


def test_zip_members_with_empty_names_or_damaged_data_are_refused(
    seeds: dict[str, bytes], scratch: Path
) -> None:
    import zipfile

    empty = scratch / "empty_name.zip"
    with zipfile.ZipFile(empty, "w") as archive:
        archive.writestr(zipfile.ZipInfo(""), b"x")
    with pytest.raises(MedSwinError, match="a zip member has an empty name"):
        read_image(empty)
    data = bytearray(seeds["zip"])
    data[60:90] = b"\xff" * 30  # inside the first member's deflate stream
    damaged = scratch / "damaged_deflate.zip"
    damaged.write_bytes(bytes(data))
    with pytest.raises(MedSwinError, match="damaged_deflate.zip: (could not extract|not a valid zip)"):
        read_image(damaged)


def test_nifti_headers_promising_more_than_the_file_holds_are_refused(
    seeds: dict[str, bytes], scratch: Path
) -> None:
    header = bytearray(seeds["nii"])
    struct.pack_into("<h", header, 42, 92)  # dim[1]: 6 -> 92 voxels along x
    path = scratch / "promises.nii"
    path.write_bytes(bytes(header))
    with pytest.raises(
        MedSwinError, match=r"promises 92×5×4 voxels of int16 .* but the file holds \d+ bytes"
    ):
        read_image(path)
    struct.pack_into("<h", header, 42, 6)
    struct.pack_into("<h", header, 70, 68)  # datatype code nibabel does not know
    path.write_bytes(bytes(header))
    with pytest.raises(MedSwinError, match="not a valid NIfTI file .*data code 68"):
        read_image(path)
