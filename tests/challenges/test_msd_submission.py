"""``medswin submit msd``: Decathlon 4D and nnU-Net per-channel task folders -> predictions + zip; validator."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
from challenge_factory import ct_case, mri_channels

from medswin.challenges.msd import read_task, validate_msd
from medswin.cli.main import main
from medswin.io import read_image, write_image, write_labels

BRAIN_LABELS = {"0": "background", "1": "edema", "2": "non-enhancing tumor", "3": "enhancing tumour"}
BRAIN_MODALITIES = {"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"}


def _decathlon_brain_task(root: Path, cases: list[str], listed_extra: list[str] = ()) -> Path:
    task = root / "Task01_BrainTumour"
    for seed, case in enumerate(cases):
        channels = mri_channels(seed)
        stacked = channels[0].with_array(np.concatenate([c.array for c in channels]))
        write_image(stacked, task / "imagesTs" / f"{case}.nii.gz")  # one 4D file per case
    dataset = {
        "name": "BrainTumour",
        "tensorImageSize": "4D",
        "modality": BRAIN_MODALITIES,
        "labels": BRAIN_LABELS,
        "numTest": len(cases) + len(listed_extra),
        "test": [f"./imagesTs/{c}.nii.gz" for c in [*cases, *listed_extra]],
    }
    (task / "dataset.json").write_text(json.dumps(dataset))
    return task


def test_decathlon_4d_task_is_predicted_on_each_grid_and_zipped(
    tmp_path: Path, msd_brain_checkpoint: Path, capsys
) -> None:
    task = _decathlon_brain_task(tmp_path, ["BRATS_485", "BRATS_486"], listed_extra=["BRATS_487"])
    out = tmp_path / "out"
    assert main(["submit", "msd", "-i", str(task), "-o", str(out), "-m", str(msd_brain_checkpoint)]) == 1
    err = capsys.readouterr().err
    assert "case BRATS_487 failed" in err and "BRATS_487.nii.gz: no such file" in err
    assert "1 of 3 case(s) failed; writing BrainTumour.incomplete.zip, not BrainTumour.zip" in err
    assert not (out / "BrainTumour.zip").exists()  # the name a user uploads holds only whole submissions
    with zipfile.ZipFile(out / "BrainTumour.incomplete.zip") as archive:
        assert sorted(archive.namelist()) == ["BrainTumour/BRATS_485.nii.gz", "BrainTumour/BRATS_486.nii.gz"]
    for case in ("BRATS_485", "BRATS_486"):
        labels = read_image(out / "predictions" / f"{case}.nii.gz", kind="label")
        image = read_image(task / "imagesTs" / f"{case}.nii.gz")
        assert image.num_channels == 4 and labels.num_channels == 1
        assert labels.grid_difference(image) is None
        assert set(np.unique(labels.array)) <= {0, 1, 2, 3}


def test_nnunet_layout_with_channel_files(tmp_path: Path, ct_checkpoint: Path) -> None:
    task = tmp_path / "Dataset501_Phantom"
    for seed, case in enumerate(["phantom_001", "phantom_002"]):
        write_image(ct_case(seed), task / "imagesTs" / f"{case}_0000.nii.gz", dtype=np.int16)
    labels = {"background": 0, "liver": 1, "spleen": 2, "kidney_right": 3, "kidney_left": 4, "vertebra": 5}
    dataset = {"channel_names": {"0": "CT"}, "labels": labels, "numTraining": 0, "file_ending": ".nii.gz"}
    (task / "dataset.json").write_text(json.dumps(dataset))
    out = tmp_path / "out"
    assert main(["-q", "submit", "msd", "-i", str(task), "-o", str(out), "-m", str(ct_checkpoint)]) == 0
    parsed = read_task(task)
    assert parsed.test == ("phantom_001", "phantom_002") and parsed.labels[5] == "vertebra"
    assert validate_msd(out / "Dataset501_Phantom.zip", parsed).ok
    assert validate_msd(out / "predictions", parsed).problems  # the folder also holds medswin's records


def test_validator_names_each_problem_by_case(tmp_path: Path) -> None:
    task = _decathlon_brain_task(tmp_path, ["BRATS_500", "BRATS_501", "BRATS_502", "BRATS_503"])
    image = read_image(task / "imagesTs" / "BRATS_500.nii.gz")
    grid = image.with_array(np.zeros((1, *image.shape), dtype=np.uint8), kind="label")
    upload = tmp_path / "upload"
    write_labels(grid, upload / "BRATS_500.nii.gz")  # fine
    wrong_value = grid.with_array(np.full((1, *image.shape), 7, dtype=np.uint8), kind="label")
    write_labels(wrong_value, upload / "BRATS_501.nii.gz")
    moved = grid.with_array(grid.array, kind="label")
    moved.spacing = (1.0, 1.0, 2.0)
    write_labels(moved, upload / "BRATS_502.nii.gz")
    write_image(
        grid.with_array(grid.array.astype(np.float32) + 0.5, kind="intensity"), upload / "BRATS_999.nii.gz"
    )
    (upload / "predictions.csv").write_text("case\n")
    problems = {str(p) for p in validate_msd(upload, read_task(task)).problems}
    assert problems == {
        "BRATS_501: label value(s) [7] outside the allowed [0, 1, 2, 3]",
        "BRATS_502: not on the input image's grid (spacing (1.0, 1.0, 2.0) vs (1.0, 1.0, 1.0) mm)",
        "BRATS_999: not a test case of BrainTumour",
        "predictions.csv: not a prediction (.nii.gz)",
        "BRATS_503: missing: a test case has no prediction",
    }


def test_a_model_for_other_channels_is_refused_before_any_case(
    tmp_path: Path, ct_checkpoint: Path, capsys
) -> None:
    task = _decathlon_brain_task(tmp_path, ["BRATS_600"])
    assert (
        main(["submit", "msd", "-i", str(task), "-o", str(tmp_path / "out"), "-m", str(ct_checkpoint)]) == 2
    )
    assert "takes channels CT but BrainTumour declares FLAIR, T1w, t1gd, T2w" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
