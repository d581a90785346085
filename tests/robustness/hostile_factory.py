"""Broken inputs for the robustness suite, each made from a good one by the damage users meet.

Every maker writes into a folder it is given and returns what it wrote; nothing is downloaded.
The good inputs are tiny (28 x 24 x 12 voxels) so that a batch with several of them stays fast.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import os
import pickle
import shutil
import struct
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate
from pydicom.uid import HTJ2KLossless

sys.path.insert(0, str(Path(__file__).parents[1] / "io"))

from dicom_factory import write_report, write_series, zip_folder  # noqa: E402

from medswin.data.phantom import make_ct_phantom  # noqa: E402
from medswin.io import Image, write_image  # noqa: E402

__all__ = [
    "MODALITIES",
    "SHAPE",
    "SPACING",
    "PATIENT_NAME",
    "PATIENT_ID",
    "ct_case",
    "snapshot",
    "listing",
    "write_nifti",
    "truncate",
    "flip_bit",
    "with_voxel",
    "with_pixdim",
    "with_sform_column",
    "write_series",
    "write_report",
    "zip_folder",
    "drop_slice",
    "duplicate_slice",
    "shift_slices",
    "compress_unreadably",
    "zip_with_members",
    "zip_bomb",
    "zip_bomb_of_many_members",
    "CodeRunningPayload",
    "write_code_running_pickle",
    "CliRun",
    "run_sandboxed",
    "summary_rows",
]

#: small anisotropic cases: 28 x 24 x 12 voxels of 2.4 x 2.2 x 5 mm (one model window).
#: BraTS-style channel names of the four-modality model.
MODALITIES = ["t1n", "t1c", "t2w", "t2f"]
SHAPE = (28, 24, 12)
SPACING = (2.4, 2.2, 5.0)
#: what :mod:`dicom_factory` writes into every header.
PATIENT_NAME = "Phantom^Test"
PATIENT_ID = "MEDSWIN-TEST-0001"


def ct_case(seed: int, orientation: str = "LPS") -> Image:
    return make_ct_phantom(shape=SHAPE, spacing=SPACING, orientation=orientation, seed=seed).image  # type: ignore[arg-type]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative name -> bytes), to prove inputs stay byte-identical."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def listing(folder: Path) -> list[str]:
    """Every path under ``folder`` (files, folders, hidden ones too), relative and sorted."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def write_nifti(path: Path, seed: int = 0, orientation: str = "LPS", dtype: type = np.int16) -> Path:
    """A good CT as NIfTI (``.nii`` or ``.nii.gz`` from the name)."""
    return write_image(ct_case(seed, orientation), path, dtype=dtype)


# ------------------------------------------------------------------------------------ NIfTI damage
def truncate(path: Path, keep: float = 0.5) -> Path:
    """Cut the file, as an interrupted copy does."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def flip_bit(path: Path, offset: int, bit: int = 3) -> Path:
    """Flip one bit at ``offset`` (negative: from the end), as a failing disk or transfer does."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 1 << bit
    path.write_bytes(bytes(data))
    return path


def with_voxel(path: Path, value: float, seed: int = 0) -> Path:
    """A float32 CT with one voxel set to ``value`` (NaN or infinity)."""
    image = ct_case(seed)
    array = image.array.astype(np.float32)
    array[0, 5, 6, 7] = value
    return write_image(image.with_array(array), path)


def _nifti_header_patch(path: Path, patch: dict[int, tuple[str, tuple]]) -> Path:
    """Rewrite header fields at byte offsets (``offset -> (struct format, values)``) of a .nii/.nii.gz."""
    compressed = path.name.endswith(".gz")
    data = bytearray(gzip.decompress(path.read_bytes()) if compressed else path.read_bytes())
    for offset, (fmt, values) in patch.items():
        struct.pack_into("<" + fmt, data, offset, *values)
    path.write_bytes(gzip.compress(bytes(data)) if compressed else bytes(data))
    return path


def with_pixdim(path: Path, axis: int, value: float, sform_code: int = 0, qform_code: int = 1) -> Path:
    """Set ``pixdim[axis]`` (1-based, the voxel size the qform uses) and the two form codes."""
    return _nifti_header_patch(
        path, {76 + 4 * axis: ("f", (value,)), 252: ("h", (qform_code,)), 254: ("h", (sform_code,))}
    )


def with_sform_column(path: Path, column: int, value: float) -> Path:
    """Set column ``column`` of the sform (srow_x/y/z) to ``value``, sform code 1 and qform code 0."""
    patch = {280 + 16 * row + 4 * column: ("f", (value,)) for row in range(3)}
    patch.update({252: ("h", (0,)), 254: ("h", (1,))})
    return _nifti_header_patch(path, patch)


# ------------------------------------------------------------------------------------ DICOM damage
def drop_slice(files: list[Path], index: int) -> Path:
    """Delete one slice file (an incomplete export)."""
    files[index].unlink()
    return files[index]


def duplicate_slice(files: list[Path], index: int) -> Path:
    """Copy one slice file under a second name (the same image exported twice)."""
    copy = files[index].with_name(f"copy_of_{files[index].name}")
    shutil.copyfile(files[index], copy)
    return copy


def shift_slices(files: list[Path], start: int, millimetres: float) -> None:
    """Move the slices from ``start`` on by ``millimetres`` along z, so the slice step is uneven."""
    for path in files[start:]:
        ds = pydicom.dcmread(path)
        position = [float(v) for v in ds.ImagePositionPatient]
        position[2] += millimetres
        ds.ImagePositionPatient = position
        ds.save_as(path, enforce_file_format=True)


def compress_unreadably(files: list[Path]) -> None:
    """Re-encode every slice as High-Throughput JPEG 2000, which no installed decoder reads."""
    for path in files:
        ds = pydicom.dcmread(path)
        ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + bytes(range(64)) + b"\xff\xd9"])
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
        ds.file_meta.TransferSyntaxUID = HTJ2KLossless
        ds.save_as(path, enforce_file_format=True)


# -------------------------------------------------------------------------------------- zip damage
def zip_with_members(path: Path, members: dict[str, bytes]) -> Path:
    """A zip holding ``members`` under exactly these names (``../x``, ``/abs/x`` included)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name), data)
    return path


def zip_bomb(path: Path, megabytes: int = 8) -> Path:
    """One member of zeros that deflates about 1000-fold (far above medswin's ratio limit)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("export/slice.dcm", bytes(megabytes * 2**20))
    return path


def zip_bomb_of_many_members(path: Path, members: int = 24) -> Path:
    """Many 1 MiB members of zeros: each small enough to pass a per-member check, together a bomb."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for index in range(members):
            archive.writestr(f"export/{index:04d}.dcm", bytes(2**20))
    return path


# ----------------------------------------------------------------------------------- checkpoints
class CodeRunningPayload:
    """Unpickling this calls ``os.mkdir(marker)``: proof that a loader executed code from a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.mkdir, (str(self.marker),))


def write_code_running_pickle(path: Path, marker: Path, *, torch_format: bool = True) -> Path:
    """A checkpoint-looking file whose unpickling would run code (torch zip format or a bare pickle)."""
    payload = {"state_dict": {"weight": CodeRunningPayload(marker)}, "epoch": 3}
    if torch_format:
        import torch

        buffer = io.BytesIO()
        torch.save(payload, buffer)
        path.write_bytes(buffer.getvalue())
    else:
        path.write_bytes(pickle.dumps(payload, protocol=2))  # torch.load's default protocol
    return path


# ----------------------------------------------------------------------------------------- CLI
@dataclass
class CliRun:
    """One in-process ``medswin`` run and what the workspace looked like around it."""

    code: int
    stdout: str
    stderr: str
    workspace: Path
    before: list[str]  # every path under the workspace before the run
    after: list[str]  # ... and after
    inputs_before: dict[str, bytes]
    inputs_after: dict[str, bytes]

    def new_paths(self) -> list[str]:
        """Paths under the workspace that the run created."""
        return sorted(set(self.after) - set(self.before))

    def written_outside(self, *allowed: str) -> list[str]:
        """Created paths outside the ``allowed`` folders (relative to the workspace); should be empty."""
        return [p for p in self.new_paths() if not any(p == a or p.startswith(f"{a}/") for a in allowed)]


def _inputs(paths: list[Path]) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for path in paths:
        if path.is_dir():
            files.update({f"{path}/{name}": data for name, data in snapshot(path).items()})
        elif path.exists():
            files[str(path)] = path.read_bytes()
    return files


def run_sandboxed(argv: list[str], workspace: Path, inputs: list[Path]) -> CliRun:
    """Run ``medswin argv`` in-process from an empty working folder with a private, empty temp folder.

    Both live in ``workspace`` (``cwd/`` and ``tmp/``), so :meth:`CliRun.written_outside` also sees
    files left in the working or temporary folder. ``inputs`` are snapshotted byte for byte.
    """
    from medswin.cli.main import main

    for name in ("cwd", "tmp"):
        (workspace / name).mkdir(parents=True, exist_ok=True)
    before, inputs_before = listing(workspace), _inputs(inputs)
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workspace / "cwd")
        patch.setattr(tempfile, "tempdir", str(workspace / "tmp"))
        patch.setenv("TMPDIR", str(workspace / "tmp"))
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main(argv)
    return CliRun(
        code,
        stdout.getvalue(),
        stderr.getvalue(),
        workspace,
        before,
        listing(workspace),
        inputs_before,
        _inputs(inputs),
    )


def summary_rows(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as stream:
        return {row["case"]: row for row in csv.DictReader(stream)}
