"""``medswin predict`` over many cases: folders, DICOM series, zips, failures, resume, outputs, shards."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from batch_factory import ct_case, snapshot, write_nifti_cases
from dicom_factory import write_series, zip_folder

from medswin.batch import finished_record
from medswin.cli.main import main
from medswin.io import read_image
from medswin.models import preset_card, save_checkpoint

REPOSITORY = Path(__file__).resolve().parents[2]


def _summary(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as stream:
        return {row["case"]: row for row in csv.DictReader(stream)}


def _predict(inputs: list[Path], out: Path, model: Path, *extra: str) -> int:
    argv = ["-q", "predict", *(a for p in inputs for a in ("-i", str(p))), "-o", str(out), "-m", str(model)]
    return main([*argv, *extra])


def _hidden_leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.name.startswith("."))


def test_folder_batch_goes_on_past_a_corrupt_case_and_resumes(tmp_path: Path, tiny_checkpoint: Path) -> None:
    data = tmp_path / "data"
    write_nifti_cases(data, ["case_a", "case_b", "case_c"])
    broken = data / "case_b.nii.gz"
    broken.write_bytes(broken.read_bytes()[:400])  # truncated in transfer
    before = snapshot(data)
    out = tmp_path / "out"

    assert _predict([data], out, tiny_checkpoint) == 1
    rows = _summary(out / "summary.csv")
    assert [rows[c]["status"] for c in ("case_a", "case_b", "case_c")] == ["done", "failed", "done"]
    assert "case_b.nii.gz" in rows["case_b"]["reason"]
    assert not list(out.glob("case_b*")) and _hidden_leftovers(out) == []
    for case in ("case_a", "case_c"):
        labels = read_image(out / f"{case}.nii.gz", kind="label")
        assert labels.same_grid(read_image(data / f"{case}.nii.gz"), atol_mm=1e-5)
        record = json.loads((out / f"{case}.json").read_text())
        assert record["model"] == "tiny_batch" and record["inputs"] == [f"{case}.nii.gz"]
        counts = np.bincount(np.asarray(labels.array).ravel(), minlength=6)
        unit = float(np.prod(labels.spacing)) / 1000
        assert {n: v["voxels"] for n, v in record["labels"].items()} == {
            "liver": counts[1],
            "spleen": counts[2],
            "kidney_right": counts[3],
            "kidney_left": counts[4],
            "vertebra": counts[5],
        }
        assert record["labels"]["liver"]["volume_ml"] == pytest.approx(counts[1] * unit)
        assert float(rows[case]["liver_ml"]) == pytest.approx(counts[1] * unit, abs=1e-4)
    assert snapshot(data) == before  # inputs untouched

    done_bytes = (out / "case_a.nii.gz").read_bytes()
    (out / "case_c.nii.gz").write_bytes(b"damaged")  # a finished output whose checksum no longer matches
    assert _predict([data], out, tiny_checkpoint) == 1
    rows = _summary(out / "summary.csv")
    assert [rows[c]["status"] for c in ("case_a", "case_b", "case_c")] == ["skipped", "failed", "failed"]
    assert "not a finished output" in rows["case_c"]["reason"]
    assert (out / "case_a.nii.gz").read_bytes() == done_bytes
    assert (out / "case_c.nii.gz").read_bytes() == b"damaged"  # kept: medswin does not vouch for it

    broken.unlink()
    assert _predict([data], out, tiny_checkpoint, "--overwrite") == 0
    rows = _summary(out / "summary.csv")
    assert [rows[c]["status"] for c in ("case_a", "case_c")] == ["done", "done"]
    assert finished_record(out, "case_c", "tiny_batch", ["nifti"]) is not None


def test_dicom_series_become_cases_with_dicom_seg_outputs(tmp_path: Path, tiny_checkpoint: Path) -> None:
    study = tmp_path / "study"
    first = write_series(study, ct_case(1), series_number=2)
    second = write_series(study, ct_case(2, "oblique"), series_number=5, study_uid=first.study_uid)
    out = tmp_path / "out"
    assert _predict([study], out, tiny_checkpoint, "--output-format", "nifti", "dicom-seg") == 0
    for name, series in (("study_s2", first), ("study_s5", second)):
        labels = read_image(out / f"{name}.nii.gz", kind="label")
        assert labels.same_grid(read_image(study, series_uid=series.series_uid), atol_mm=1e-4)
        seg = hd.seg.segread(out / f"{name}.dcm")
        assert seg.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4"
        assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == series.series_uid
        assert seg.StudyInstanceUID == first.study_uid
        assert [s.SegmentLabel for s in seg.SegmentSequence] == [
            "liver",
            "spleen",
            "kidney_right",
            "kidney_left",
            "vertebra",
        ]
        volume = seg.get_volume(combine_segments=True, relabel=False)  # segment numbers = label values here
        assert volume.array.shape[0] == len(series.files)
        expected = np.asarray(labels.array[0])
        total = int(sum((expected == value).sum() for value in range(1, 6)))
        assert int((volume.array > 0).sum()) == total
        record = json.loads((out / f"{name}.json").read_text())
        assert set(record["files"]) == {f"{name}.nii.gz", f"{name}.dcm"}
        # a PACS viewer shows what the model is for and the recorded quality verdict
        verdict = record["qc"]["verdict"]
        assert seg.SeriesDescription == f"medswin tiny_batch QC {verdict}"
        assert seg.ContentDescription.startswith(f"demonstration of medswin only; QC {verdict}")
        assert len(seg.ContentDescription) <= 64
    assert pydicom.dcmread(out / "study_s2.dcm").PatientID == "MEDSWIN-TEST-0001"  # the source patient


def test_dicom_seg_for_a_nifti_input_fails_that_case_clearly(tmp_path: Path, tiny_checkpoint: Path) -> None:
    write_nifti_cases(tmp_path / "data", ["ct"])
    out = tmp_path / "out"
    assert _predict([tmp_path / "data"], out, tiny_checkpoint, "--output-format", "dicom-seg") == 1
    reason = _summary(out / "summary.csv")["ct"]["reason"]
    assert "ct.nii.gz is a nifti image, not a DICOM series; DICOM-SEG" in reason and "choose nifti" in reason
    assert sorted(p.name for p in out.iterdir()) == ["summary.csv"]


def test_a_failed_extra_format_keeps_the_finished_one(tmp_path: Path, tiny_checkpoint: Path) -> None:
    write_nifti_cases(tmp_path / "data", ["ct"])
    out = tmp_path / "out"
    both = ("--output-format", "nifti", "dicom-seg")
    assert _predict([tmp_path / "data"], out, tiny_checkpoint, *both) == 1
    assert "dicom-seg not written" in _summary(out / "summary.csv")["ct"]["reason"]
    record = json.loads((out / "ct.json").read_text())
    assert (
        set(record["files"]) == {"ct.nii.gz"}
        and "is a nifti image, not a DICOM series" in record["failed_outputs"]["dicom-seg"]
    )
    finished = (out / "ct.nii.gz").stat()

    assert _predict([tmp_path / "data"], out, tiny_checkpoint, *both) == 1  # retries only the SEG
    assert (out / "ct.nii.gz").stat().st_mtime_ns == finished.st_mtime_ns
    assert _predict([tmp_path / "data"], out, tiny_checkpoint, "--output-format", "nifti") == 0
    assert _summary(out / "summary.csv")["ct"]["status"] == "skipped"  # the NIfTI is finished
    assert (out / "ct.nii.gz").stat().st_mtime_ns == finished.st_mtime_ns
    assert sorted(p.name for p in out.iterdir()) == ["ct.json", "ct.nii.gz", "summary.csv"]


def test_dicom_seg_of_a_series_without_slice_thickness(tmp_path: Path, tiny_checkpoint: Path) -> None:
    series = write_series(tmp_path / "study", ct_case(4, "oblique"))
    for path in series.files:  # type 2 in CT, and left out by some exporters
        ds = pydicom.dcmread(path)
        del ds.SliceThickness
        ds.save_as(path)
    out = tmp_path / "out"
    assert _predict([tmp_path / "study"], out, tiny_checkpoint, "--output-format", "nifti", "dicom-seg") == 0
    seg = pydicom.dcmread(out / "study.dcm")
    measures = seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    source = read_image(tmp_path / "study")
    assert float(measures.SliceThickness) == pytest.approx(source.spacing[2])
    assert [float(v) for v in measures.PixelSpacing] == pytest.approx([source.spacing[1], source.spacing[0]])


def test_zip_case_with_preview_probabilities_and_label_subset(tmp_path: Path, tiny_checkpoint: Path) -> None:
    write_series(tmp_path / "export", ct_case(3))
    archive = zip_folder(tmp_path / "export", tmp_path / "anon_study.zip")
    out = tmp_path / "out"
    extra = ["--preview", "--save-probabilities", "--output-format", "mha", "--labels-subset", "liver,5"]
    assert _predict([archive], out, tiny_checkpoint, *extra) == 0
    labels = read_image(out / "anon_study.mha", kind="label")
    source = read_image(archive)
    assert labels.same_grid(source, atol_mm=1e-4)
    assert set(np.unique(labels.array)) <= {0, 1, 5}
    probabilities = read_image(out / "anon_study_probabilities.nii.gz")
    assert probabilities.num_channels == 6 and probabilities.same_grid(source, atol_mm=1e-4)
    np.testing.assert_allclose(probabilities.array.sum(axis=0), 1.0, atol=1e-4)
    from PIL import Image as PILImage

    with PILImage.open(out / "anon_study_preview.png") as preview:
        assert preview.format == "PNG" and preview.size == (1200, 440)
    record = json.loads((out / "anon_study.json").read_text())
    assert set(record["files"]) == {
        "anon_study.mha",
        "anon_study_probabilities.nii.gz",
        "anon_study_preview.png",
    }
    assert record["labels"]["spleen"]["voxels"] == 0


def test_usage_errors_exit_2_before_any_case(tmp_path: Path, tiny_checkpoint: Path, capsys) -> None:
    write_nifti_cases(tmp_path / "data", ["ct"])
    out = tmp_path / "out"
    assert _predict([tmp_path / "data"], out, tiny_checkpoint, "--labels-subset", "heart") == 2
    assert "the model has no label 'heart'" in capsys.readouterr().err
    assert _predict([tmp_path / "data"], out, tiny_checkpoint, "--shard", "2/2") == 2
    assert "needs 0 <= I < N" in capsys.readouterr().err
    assert _predict([tmp_path / "data"], out, tiny_checkpoint, "--jobs", "0") == 2
    card = preset_card("demo").replace(id="cannot_run", roi_size=(32, 32, 32))  # a 1-voxel bottleneck
    unusable = save_checkpoint(card.create_model(), card, tmp_path / "unusable.safetensors")
    assert _predict([tmp_path / "data"], out, unusable) == 2
    assert "'cannot_run': its card's roi_size does not fit" in capsys.readouterr().err
    assert not out.exists()


def test_shards_split_the_cases_without_overlap(tmp_path: Path, tiny_checkpoint: Path) -> None:
    names = [f"case{i}" for i in range(5)]
    write_nifti_cases(tmp_path / "data", names)
    out = tmp_path / "out"
    for shard in ("0/2", "1/2"):
        assert _predict([tmp_path / "data"], out, tiny_checkpoint, "--shard", shard, "--jobs", "2") == 0
    first = _summary(out / "summary_shard0of2.csv")
    second = _summary(out / "summary_shard1of2.csv")
    assert not set(first) & set(second) and sorted({*first, *second}) == names
    assert _predict([tmp_path / "data"], out, tiny_checkpoint) == 0  # a plain re-run collects the summary
    assert {row["status"] for row in _summary(out / "summary.csv").values()} == {"skipped"}


def _command(data: Path, out: Path, model: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "medswin",
        "-q",
        "predict",
        "-i",
        str(data),
        "-o",
        str(out),
        "-m",
        str(model),
    ]


def _environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPOSITORY), "OMP_NUM_THREADS": "1"}


def _wait_for(path: Path, process: subprocess.Popen, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_killed_batch_resumes_without_half_written_cases(
    tmp_path: Path, tiny_checkpoint: Path, how: signal.Signals
) -> None:
    names = [f"case{i}" for i in range(4)]
    data = tmp_path / "data"
    write_nifti_cases(data, names)
    out = tmp_path / "out"
    process = subprocess.Popen(
        _command(data, out, tiny_checkpoint), env=_environment(), stderr=subprocess.PIPE
    )
    _wait_for(out / "case0.json", process)
    process.send_signal(how)
    _, err = process.communicate(timeout=120)
    assert process.returncode == (-9 if how == signal.SIGKILL else 143), err
    finished = {n for n in names if finished_record(out, n, "tiny_batch", ["nifti"]) is not None}
    assert "case0" in finished
    kept = {n: (out / f"{n}.nii.gz").read_bytes() for n in finished}
    if how == signal.SIGTERM:  # the interrupted case was removed before exiting: nothing half-written
        assert _hidden_leftovers(out) == []
        assert {p.name for p in out.glob("case*.nii.gz")} == {f"{n}.nii.gz" for n in finished}

    resumed = subprocess.run(
        _command(data, out, tiny_checkpoint), env=_environment(), capture_output=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr
    rows = _summary(out / "summary.csv")
    assert {n for n, row in rows.items() if row["status"] == "skipped"} == finished
    assert {n for n, row in rows.items() if row["status"] == "done"} == set(names) - finished
    assert all((out / f"{n}.nii.gz").read_bytes() == kept[n] for n in finished)
    assert all(finished_record(out, n, "tiny_batch", ["nifti"]) for n in names)
    assert _hidden_leftovers(out) == []


def test_a_run_killed_after_its_last_record_is_finished_not_redone(
    tmp_path: Path, tiny_checkpoint: Path
) -> None:
    data = tmp_path / "data"
    write_nifti_cases(data, ["case0", "case1"])
    out = tmp_path / "out"
    assert _predict([data], out, tiny_checkpoint, "--preview") == 0
    finished = snapshot(out)
    # SIGKILL between writing case0's record and removing its running marker leaves this marker:
    (out / ".case0.running").write_text('["case0.nii.gz", "case0_preview.png", "case0.json"]')
    # ... while one killed before its record was written names a file the record lacks:
    (out / ".case1.running").write_text('["case1.mha", "case1.json"]')
    (out / "case1.mha").write_bytes(b"half of an interrupted run's output")

    assert _predict([data], out, tiny_checkpoint, "--preview") == 0
    rows = _summary(out / "summary.csv")
    assert (rows["case0"]["status"], rows["case1"]["status"]) == ("skipped", "done")
    assert (out / "case0.json").read_bytes() == finished["case0.json"]
    assert not (out / "case1.mha").exists()  # the interrupted run's file, named by its marker
    assert _hidden_leftovers(out) == []


@pytest.mark.slow
def test_torchrun_two_cpu_processes_share_the_cases(tmp_path: Path, tiny_checkpoint: Path) -> None:
    names = [f"case{i}" for i in range(4)]
    write_nifti_cases(tmp_path / "data", names)
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "medswin",
        *_command(tmp_path / "data", out, tiny_checkpoint)[3:],
    ]
    result = subprocess.run(command, env=_environment(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    rows = _summary(out / "summary.csv")
    assert sorted(rows) == names and {row["status"] for row in rows.values()} == {"done"}
    shards = [_summary(out / f"summary_shard{i}of2.csv") for i in range(2)]
    assert sorted([*shards[0], *shards[1]]) == names and not set(shards[0]) & set(shards[1])


def test_a_case_that_may_not_suit_the_model_is_warned_about_and_predicted(
    tmp_path: Path, tiny_checkpoint: Path, caplog
) -> None:
    """An MR series given to a CT model: the case still runs, and its record, summary and log say why
    its quality verdict is fail (medswin.models.check_fit, recorded by medswin.qc)."""
    from dicom_factory import ct_image

    write_series(tmp_path / "data" / "mr", ct_image(shape=(12, 10, 6)), modality="MR")
    out = tmp_path / "out"
    with caplog.at_level("WARNING"):
        assert _predict([tmp_path / "data"], out, tiny_checkpoint) == 0
    reason = "The image is MR (DICOM Modality), the model was trained on CT."
    warned = [r.getMessage() for r in caplog.records if "QC fail" in r.getMessage()]
    assert warned and reason in warned[0]
    row = _summary(out / "summary.csv")["mr"]
    assert (row["status"], row["qc"], row["qc_reason"]) == ("done", "fail", reason)
    check = next(
        c for c in json.loads((out / "mr.json").read_text())["qc"]["checks"] if c["name"] == "fit:modality"
    )
    assert (check["verdict"], check["value"], check["limit"]) == ("fail", "MR", "CT")
