"""``medswin predict`` against a hostile output folder: what it may replace, who may write there, reruns.

Each test drives the CLI on phantom cases and checks the output-folder contract of the README:

* an output folder that is, holds or lies inside an input is refused before anything runs;
* medswin replaces or deletes only files its own records (or running markers) name;
* a rerun adds missing outputs to finished cases, redoes cases made with other settings, and the
  folder's ``summary.csv`` lists every recorded case;
* one run at a time holds the folder (shards of one split together), stale locks are taken over;
* a read-only folder or a symbolic link loop is one line, not a traceback; a killed run's
  extracted zip is in the folder's work area and the next run removes it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostile_factory import (
    PATIENT_NAME,
    ct_case,
    run_sandboxed,
    snapshot,
    summary_rows,
    write_nifti,
    write_series,
)

from medswin.cli.main import main

REPOSITORY = Path(__file__).resolve().parents[2]


def _predict(inputs: list[Path], out: Path, model: Path, *extra: str) -> int:
    argv = ["-q", "predict", *(a for p in inputs for a in ("-i", str(p))), "-o", str(out), "-m", str(model)]
    return main([*argv, *extra])


def _cases(folder: Path, count: int) -> Path:
    for index in range(count):
        write_nifti(folder / f"case{index:02d}.nii.gz", seed=index)
    return folder


def _record(out: Path, case: str) -> dict:
    return json.loads((out / f"{case}.json").read_text())


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


# ------------------------------------------------------------------------- inputs in the output folder
def _same_folder(tmp: Path, data: Path) -> tuple[list[Path], Path]:
    return [data], data


def _symlink_to_input(tmp: Path, data: Path) -> tuple[list[Path], Path]:
    (tmp / "link").symlink_to(data, target_is_directory=True)
    return [data], tmp / "link"


def _input_file_in_output(tmp: Path, data: Path) -> tuple[list[Path], Path]:
    return [data / "case00.nii.gz"], data


@pytest.mark.parametrize("layout", [_same_folder, _symlink_to_input, _input_file_in_output])
def test_output_folder_holding_inputs_is_refused_before_anything_runs(
    tmp_path: Path, tiny_checkpoint: Path, layout, capsys
) -> None:
    data = _cases(tmp_path / "data", 2)
    inputs, out = layout(tmp_path, data)
    before = snapshot(tmp_path)
    assert _predict(inputs, out, tiny_checkpoint, "--overwrite") == 2
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "choose an output folder outside" in lines[0], lines
    assert snapshot(tmp_path) == before  # nothing deleted, nothing written


def test_output_folder_may_lie_beside_the_cases_but_not_inside_a_dicom_study(
    tmp_path: Path, tiny_checkpoint: Path, capsys
) -> None:
    data = _cases(tmp_path / "data", 2)
    before = snapshot(data)
    assert _predict([data], data / "out", tiny_checkpoint) == 0
    assert _predict([data], data / "out", tiny_checkpoint) == 0  # the outputs are not read as cases
    assert sorted(summary_rows(data / "out" / "summary.csv")) == ["case00", "case01"]
    assert {k: v for k, v in snapshot(data).items() if not k.startswith("out/")} == before

    write_series(tmp_path / "study", ct_case(4))
    study = snapshot(tmp_path / "study")
    capsys.readouterr()
    assert _predict([tmp_path / "study"], tmp_path / "study" / "segmentations", tiny_checkpoint) == 2
    assert "lies inside the input" in capsys.readouterr().err
    assert snapshot(tmp_path / "study") == study


# ------------------------------------------------------------------------------- ownership of files
def test_files_medswin_did_not_make_are_kept_without_overwrite(tmp_path: Path, tiny_checkpoint: Path) -> None:
    data = _cases(tmp_path / "data", 2)
    write_nifti(data / "sub-01_ct.nii.gz", seed=5)
    out = tmp_path / "out"
    out.mkdir()
    (out / "case00.json").write_text('{"reader": "Dr. A", "notes": "check the spleen"}\n')
    (out / "case01_probabilities.nii.gz").write_bytes(b"the user's own probability map")
    (out / "sub-01_ct.json").write_text('{"Modality": "CT", "ConvolutionKernel": "B30f"}\n')
    users = snapshot(out)

    assert _predict([data], out, tiny_checkpoint) == 1
    rows = summary_rows(out / "summary.csv")
    assert {c: r["status"] for c, r in rows.items()} == {
        "case00": "failed",
        "case01": "done",
        "sub-01_ct": "failed",
    }
    assert "case00.json: exists but is not a finished output" in rows["case00"]["reason"]
    assert "--overwrite" in rows["sub-01_ct"]["reason"]
    assert {name: snapshot(out)[name] for name in users} == users  # kept byte for byte
    assert "case01_probabilities.nii.gz" not in _record(out, "case01")["files"]

    # A rerun that now asks for probabilities must not take the user's file over either.
    assert _predict([data], out, tiny_checkpoint, "--save-probabilities") == 1
    assert summary_rows(out / "summary.csv")["case01"]["status"] == "failed"
    assert (out / "case01_probabilities.nii.gz").read_bytes() == users["case01_probabilities.nii.gz"]
    assert (out / "case01.nii.gz").exists() and _record(out, "case01")["status"] == "done"

    assert _predict([data], out, tiny_checkpoint, "--overwrite") == 0  # replacing them is asked for
    assert _record(out, "case00")["case"] == "case00" and _record(out, "sub-01_ct")["model"] == "tiny_robust"
    assert (out / "case01_probabilities.nii.gz").read_bytes() == users["case01_probabilities.nii.gz"]


def test_other_output_formats_are_added_and_finished_files_kept(
    tmp_path: Path, tiny_checkpoint: Path
) -> None:
    data = _cases(tmp_path / "data", 1)
    out = tmp_path / "out"
    assert _predict([data], out, tiny_checkpoint, "--preview") == 0
    first = snapshot(out)

    assert _predict([data], out, tiny_checkpoint, "--preview", "--output-format", "mha") == 0
    assert summary_rows(out / "summary.csv")["case00"]["status"] == "done"
    for name in ("case00.nii.gz", "case00_preview.png"):
        assert (out / name).read_bytes() == first[name]
    record = _record(out, "case00")
    assert set(record["files"]) == {"case00.nii.gz", "case00_preview.png", "case00.mha"}
    assert record["formats"] == ["nifti", "mha"]

    assert _predict([data], out, tiny_checkpoint, "--preview") == 0  # the original command again
    assert summary_rows(out / "summary.csv")["case00"]["status"] == "skipped"
    assert _predict([data], out, tiny_checkpoint, "--output-format", "nifti", "mha") == 0
    assert summary_rows(out / "summary.csv")["case00"]["status"] == "skipped"
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]


# --------------------------------------------------------------------------------------- reruns
def test_rerun_redoes_cases_made_with_other_settings(tmp_path: Path, tiny_checkpoint: Path, caplog) -> None:
    data = _cases(tmp_path / "data", 2)
    out = tmp_path / "out"
    assert _predict([data], out, tiny_checkpoint) == 0
    assert _record(out, "case00")["settings"]["overlap"] == pytest.approx(0.5)

    assert _predict([data], out, tiny_checkpoint, "--overlap", "0.25", "--labels-subset", "liver") == 0
    rows = summary_rows(out / "summary.csv")
    assert {r["status"] for r in rows.values()} == {"done"}
    settings = _record(out, "case01")["settings"]
    assert settings["overlap"] == pytest.approx(0.25) and settings["labels_subset"] == [1]
    assert float(rows["case01"]["spleen_ml"]) == 0
    kept = snapshot(out)

    caplog.clear()
    assert _predict([data], out, tiny_checkpoint, "--overlap", "0.25", "--tta", "--no-redo-changed") == 0
    rows = summary_rows(out / "summary.csv")
    assert {r["status"] for r in rows.values()} == {"skipped"}
    assert "tta False -> True" in rows["case00"]["reason"] and "labels_subset" in rows["case00"]["reason"]
    assert "case case00: made with other settings" in caplog.text
    assert snapshot(out)["case00.nii.gz"] == kept["case00.nii.gz"]

    # the runtime is such a setting (runtimes differ at near-ties); auto, which chooses per machine, is
    # recorded as nothing (so records of older runs and of auto agree); the tests run MEDSWIN_RUNTIME=torch
    assert _record(out, "case00")["settings"]["runtime"] == "torch"
    assert (
        _predict(
            [data], out, tiny_checkpoint, "--overlap", "0.25", "--labels-subset", "liver", "--runtime", "auto"
        )
        == 0
    )
    assert {r["status"] for r in summary_rows(out / "summary.csv").values()} == {"done"}
    assert "runtime" not in _record(out, "case00")["settings"]


def test_summary_after_a_partial_rerun_lists_every_recorded_case(
    tmp_path: Path, tiny_checkpoint: Path
) -> None:
    data = _cases(tmp_path / "data", 3)
    out = tmp_path / "out"
    assert _predict([data], out, tiny_checkpoint) == 0
    (out / "case02.nii.gz").write_bytes(b"damaged after the run")
    assert _predict([data / "case01.nii.gz"], out, tiny_checkpoint, "--overwrite") == 0
    rows = summary_rows(out / "summary.csv")
    assert {c: r["status"] for c, r in rows.items()} == {
        "case00": "skipped",
        "case01": "done",
        "case02": "failed",
    }
    assert rows["case00"]["output"] == "case00.nii.gz" and float(rows["case00"]["liver_ml"]) > 0
    assert "case02.nii.gz: changed or removed" in rows["case02"]["reason"]


# ------------------------------------------------------------------------------------------ lock
@pytest.fixture
def lock_holder() -> Iterator:
    """Start processes that hold an output folder's lock (as a run would) until killed."""
    started: list[subprocess.Popen] = []
    code = (
        "import sys; from pathlib import Path; from medswin.batch import OutputLock; "
        "OutputLock(Path(sys.argv[1]), (int(sys.argv[2]), int(sys.argv[3]))).__enter__(); "
        "print('held', flush=True); sys.stdin.read()"
    )

    def hold(out: Path, shard: tuple[int, int] = (0, 1)) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-c", code, str(out), *map(str, shard)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
        )
        started.append(process)
        assert process.stdout is not None and process.stdout.readline().strip() == "held"
        return process

    yield hold
    for process in started:
        process.kill()
        process.communicate()


def test_an_output_folder_in_use_is_refused_and_a_stale_lock_taken_over(
    tmp_path: Path, tiny_checkpoint: Path, lock_holder, capsys
) -> None:
    data = _cases(tmp_path / "data", 2)
    out = tmp_path / "out"
    holder = lock_holder(out)
    assert _predict([data], out, tiny_checkpoint) == 2
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and f"in use by pid {holder.pid} on host" in lines[0], lines
    assert not list(out.glob("case*"))

    holder.kill()  # a run killed with -9 leaves its lock file behind
    holder.communicate()
    assert (out / ".medswin" / "lock-0of1").exists()
    assert _predict([data], out, tiny_checkpoint) == 0
    assert {r["status"] for r in summary_rows(out / "summary.csv").values()} == {"done"}
    assert not (out / ".medswin").exists()


def test_shards_of_one_split_share_the_folder_and_nothing_else_does(
    tmp_path: Path, tiny_checkpoint: Path, lock_holder, capsys
) -> None:
    data = _cases(tmp_path / "data", 3)
    out = tmp_path / "out"
    lock_holder(out, (0, 2))
    assert _predict([data], out, tiny_checkpoint, "--shard", "1/2") == 0
    assert sorted(summary_rows(out / "summary_shard1of2.csv")) == ["case01"]
    for clash in (["--shard", "0/2"], ["--shard", "1/3"], []):
        capsys.readouterr()
        assert _predict([data], out, tiny_checkpoint, *clash) == 2, clash
        assert "in use by pid" in capsys.readouterr().err
    assert not (out / "case00.nii.gz").exists()


# ------------------------------------------------------------------------------------- bad input
def _deny_writes(out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``out`` read-only: by its mode, or (as root, whom modes do not stop) by failing writes in it."""
    if os.geteuid() != 0:
        out.chmod(0o555)
        return
    real_open, real_mkdir = os.open, os.mkdir

    def denied(path: object) -> bool:
        return (
            Path(os.fsdecode(path)).resolve().is_relative_to(out.resolve()) and Path(os.fsdecode(path)) != out
        )

    def guarded_open(path, flags, *args, **kwargs):  # noqa: ANN001, ANN202
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and denied(path):
            raise PermissionError(13, "Permission denied", os.fsdecode(path))
        return real_open(path, flags, *args, **kwargs)

    def guarded_mkdir(path, *args, **kwargs):  # noqa: ANN001, ANN202
        if denied(path):
            raise PermissionError(13, "Permission denied", os.fsdecode(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", guarded_open)
    monkeypatch.setattr(os, "mkdir", guarded_mkdir)


def test_read_only_output_folder_is_one_line_and_exit_2(
    tmp_path: Path, tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    data = _cases(tmp_path / "data", 1)
    out = tmp_path / "out"
    out.mkdir()
    _deny_writes(out, monkeypatch)
    try:
        code = _predict([data], out, tiny_checkpoint)
    finally:
        out.chmod(0o755)
    lines = _error_lines(capsys.readouterr().err)
    assert code == 2 and len(lines) == 1, lines
    assert str(out) in lines[0] and "cannot write in the output folder" in lines[0]
    assert list(out.iterdir()) == []


def test_output_folder_that_is_a_symlink_loop_is_one_line_and_exit_2(
    tmp_path: Path, tiny_checkpoint: Path, capsys
) -> None:
    data = _cases(tmp_path / "data", 1)
    (tmp_path / "out").symlink_to("out")
    assert _predict([data], tmp_path / "out", tiny_checkpoint) == 2
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and f"{tmp_path / 'out'}: a symbolic link loop" in lines[0], lines


def test_symlink_loop_in_the_input_folder_is_skipped_with_a_warning(
    tmp_path: Path, tiny_checkpoint: Path, caplog
) -> None:
    data = _cases(tmp_path / "data", 2)
    (data / "self").symlink_to("self")
    (data / "gone.nii.gz").symlink_to(tmp_path / "deleted.nii.gz")
    run = run_sandboxed(
        ["predict", "-i", str(data), "-o", str(tmp_path / "out"), "-m", str(tiny_checkpoint)],
        tmp_path,
        [data],
    )
    assert run.code == 0, run.stderr
    assert f"{data / 'self'}: skipped, a symbolic link loop" in caplog.text
    assert f"{data / 'gone.nii.gz'}: skipped" in caplog.text
    assert sorted(summary_rows(tmp_path / "out" / "summary.csv")) == ["case00", "case01"]


def _padded_dicom_zip(tmp: Path) -> Path:
    """A DICOM study zip whose members go on (padding) after the slices, so extraction takes a while."""
    series = write_series(tmp / "export", ct_case(6))
    path = tmp / "inbox" / "study.zip"
    path.parent.mkdir()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for index, file in enumerate(series.files):
            archive.write(file, f"export/{index:04d}.dcm")
        for index in range(4000):
            archive.writestr(f"export/zz_padding/{index:05d}.txt", os.urandom(4096))
    return path


@pytest.mark.slow
def test_killed_while_reading_a_zip_leaves_patient_data_only_in_the_work_area(
    tmp_path: Path, tiny_checkpoint: Path
) -> None:
    archive = _padded_dicom_zip(tmp_path)
    out, private_tmp = tmp_path / "out", tmp_path / "tmp"
    private_tmp.mkdir()
    environment = {
        **os.environ,
        "PYTHONPATH": str(REPOSITORY),
        "TMPDIR": str(private_tmp),
        "OMP_NUM_THREADS": "1",
    }
    command = [sys.executable, "-m", "medswin", "-q", "predict", "-i", str(archive.parent), "-o", str(out)]
    process = subprocess.Popen(
        [*command, "-m", str(tiny_checkpoint)], env=environment, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 240
    while not list((out / ".medswin").glob("work-0of1/*/export/0000.dcm")):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the zip was never extracted into the output's work area"
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    [left] = (out / ".medswin").glob("work-0of1/*/export/0000.dcm")  # the killed run could not clean up
    assert PATIENT_NAME.encode() in left.read_bytes()
    assert list(private_tmp.iterdir()) == []

    assert _predict([archive.parent], out, tiny_checkpoint) == 0
    assert not (out / ".medswin").exists()
    assert summary_rows(out / "summary.csv")["study"]["status"] == "done"
