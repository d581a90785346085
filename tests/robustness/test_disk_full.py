"""A disk that fills up while a DICOM-SEG is written: one line in stderr and summary.csv, cause first.

pydicom re-raises a failed write as a new error whose text is a whole traceback ("With tag ...
got exception ... Traceback ..."); the reason must be one line naming the cause and the file, and
the case's other outputs are kept. The device fills up for the DICOM files pydicom writes (the
SEG's temporary): pydicom's file object wraps a real file that refuses to grow past 4 KiB, so the whole
write path above the operating system's error is real.
"""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path
from typing import Any

import pytest
from hostile_factory import ct_case, run_sandboxed, summary_rows, write_series
from pydicom.filebase import DicomFileLike


class _FillingFile(io.FileIO):
    """A real file on a device with 4 KiB left: the write that would pass that fails with ENOSPC."""

    def write(self, data: Any) -> int:
        if self.tell() + len(data) > 4096:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().write(data)


@pytest.fixture
def full_disk_for_dicom(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every DICOM file pydicom writes (here: the SEG) goes to the nearly full device."""
    import pydicom.filewriter

    monkeypatch.setattr(
        pydicom.filewriter, "DicomFile", lambda name, mode: DicomFileLike(_FillingFile(name, mode))
    )


def test_a_full_disk_while_writing_a_seg_is_one_line_cause_first(
    tmp_path: Path, tiny_checkpoint: Path, full_disk_for_dicom: None
) -> None:
    study = tmp_path / "inbox" / "study"
    write_series(study, ct_case(1))
    out = tmp_path / "out"
    argv = ["predict", "-i", str(study), "-o", str(out), "-m", str(tiny_checkpoint)]
    run = run_sandboxed([*argv, "--output-format", "nifti", "dicom-seg"], tmp_path, [study])
    assert run.code == 1
    reason = summary_rows(out / "summary.csv")["study"]["reason"]
    assert reason.startswith("dicom-seg not written (no space left on device writing "), reason
    assert str(out / "study.dcm") in reason and "\n" not in reason and "Traceback" not in reason
    [line] = [line for line in run.stderr.splitlines() if "failed" in line]
    assert line.endswith(reason) and "Traceback" not in run.stderr and "data_element" not in run.stderr
    assert (out / "study.nii.gz").exists() and not list(out.glob("*.dcm"))
    assert not list(out.glob(".*partial"))  # nothing half-written left behind
