"""Training on radiograph pairs: the official view shift keeps views and labels consistent, volume
augmentations are refused, and medswin train runs the Swin-X2S path end to end (and resumes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from medswin.cli.main import main
from medswin.errors import ManifestError
from medswin.models.checkpoints import load_checkpoint
from medswin.training.biplanar import RandViewShiftd
from medswin.training.config import load_pipeline, parse_pipeline

PIPELINE = Path(__file__).parents[2] / "pipelines" / "train" / "x2s_demo_phantom.yaml"


def test_view_shift_moves_views_and_label_together() -> None:
    """Views that are projections of the label stay its projections after the random shift."""
    rng = np.random.default_rng(0)
    label = np.zeros((1, 40, 40, 48), dtype=np.int64)
    label[0, 12:26, 8:20, 10:40] = rng.integers(1, 3, size=(14, 12, 30))
    data = {
        "ap": label.sum(axis=2).astype(np.float32),
        "lateral": label.sum(axis=1).astype(np.float32),
        "label": label,
    }
    shift = RandViewShiftd(prob=1.0, divisors=(4.0, 4.0, 6.0))  # large shifts, still inside the volume
    moved_any = False
    for seed in range(5):
        shift.set_random_state(seed)
        out = shift(data)
        np.testing.assert_array_equal(out["ap"], out["label"].sum(axis=2))
        np.testing.assert_array_equal(out["lateral"], out["label"].sum(axis=1))
        moved_any |= not np.array_equal(out["label"], label)
    assert moved_any
    shift = RandViewShiftd(prob=0.0)
    assert shift(data)["label"] is label


@pytest.mark.parametrize(
    "augmentation",
    [{"flip": {"prob": 0.5}}, {"rotate90": {"prob": 0.5}}, {"crop": {"roi_size": [32, 32, 32]}}],
)
def test_volume_augmentations_are_refused(augmentation: dict) -> None:
    document = yaml.safe_load(PIPELINE.read_text())
    document["augmentation"].update(augmentation)
    with pytest.raises(ManifestError, match="biplanar"):
        parse_pipeline(document, source="x2s.yaml", path=PIPELINE)


def test_the_demo_pipeline_is_the_official_recipe_shrunk() -> None:
    settings = load_pipeline(PIPELINE).settings
    assert settings["loss"]["mutual_weight"] == 1.0
    assert settings["augmentation"]["view_shift"] == {"prob": 1.0, "divisors": [20, 20, 50]}
    assert settings["training"]["max_grad_norm"] == 1.0


def test_drr_then_train_then_predict_through_the_cli(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """medswin x2s drr -> medswin train (Swin-X2S card) -> medswin x2s predict with the checkpoint."""
    from medswin.data.phantom_dataset import write_phantom_dataset
    from medswin.io.readers import read_image
    from medswin.io.writers import write_image

    cts = tmp_path / "cts"
    names = write_phantom_dataset(cts, (1000, 1001, 1002, 1003), shape=(48, 48, 32), spacing=(6.0, 6.0, 8.0))
    broken = read_image(cts / "labelsTr" / f"{names[3]}.nii.gz", kind="label")
    broken.spacing = (6.0, 6.0, 9.0)  # off the CT's grid: this case fails alone
    write_image(broken, cts / "labelsTr" / f"{names[3]}.nii.gz")
    drrs = tmp_path / "drrs"
    code = main(["x2s", "drr", "-i", str(cts), "-o", str(drrs), "-m", "demo-x2s", "--folds", "3"])
    captured = capsys.readouterr()
    assert code == 1 and f"failed {names[3]}" in captured.err and "not on the CT's grid" in captured.err
    assert sorted(p.name for p in (drrs / "labelsTr").iterdir()) == [f"{n}.nii.gz" for n in names[:3]]
    assert read_image(drrs / "labelsTr" / f"{names[0]}.nii.gz").shape == (64, 64, 64)
    assert main(["x2s", "drr", "-i", str(cts), "-o", str(drrs)]) == 2  # never written over silently

    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--pipeline",
                str(PIPELINE),
                "--data-root",
                str(drrs),
                "--output",
                str(run),
                "--epochs",
                "1",
            ]
        )
        == 0
    )
    model, card = load_checkpoint(run / "best.safetensors")
    assert card.radiographs is not None and card.id == "demo-x2s"
    assert "AP + lateral pair" in card.provenance["training"]
    assert "val_kidney_left" in (run / "metrics.csv").read_text().splitlines()[0]
    assert (
        main(
            [
                "train",
                "--pipeline",
                str(PIPELINE),
                "--data-root",
                str(drrs),
                "--output",
                str(run),
                "--epochs",
                "2",
                "--resume",
            ]
        )
        == 0
    )
    assert (run / "metrics.csv").read_text().count("\n") == 3  # header + two epochs

    out = tmp_path / "pred.nii.gz"
    ap, lateral = (drrs / "imagesTr" / f"{names[0]}_000{i}.mha" for i in (0, 1))
    capsys.readouterr()
    assert (
        main(
            [
                "x2s",
                "predict",
                "--ap",
                str(ap),
                "--lateral",
                str(lateral),
                "-m",
                str(run / "best.safetensors"),
                "-o",
                str(out),
            ]
        )
        == 0
    )
    assert "64 × 64 × 64 voxels" in capsys.readouterr().out
    assert read_image(out, kind="label").shape == (64, 64, 64)
