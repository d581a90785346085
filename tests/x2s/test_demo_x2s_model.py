"""The shipped Swin-X2S demo model: found by ``-m demo-x2s``, its provenance in its card, and it
reconstructs fresh phantoms from DICOM DX and PNG radiograph pairs through ``medswin x2s predict``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from x2s_factory import phantom_pair, write_dx, write_png

from medswin.cli.main import main
from medswin.data.phantom import PHANTOM_LABELS
from medswin.io.readers import read_image
from medswin.metrics import dice
from medswin.models.resolve import resolve_model, shipped_weights
from medswin.training.demo_model import TEST_SEEDS, TRAIN_SEEDS
from medswin.training.demo_x2s_model import MIN_DICE

WEIGHTS = Path(__file__).resolve().parents[2] / "medswin" / "models" / "weights" / "demo-x2s.safetensors"
#: fresh phantoms: seeds used neither for training, validation nor the shipping check.
FRESH = ((7200, "LPS"), (7201, "oblique"))


def test_demo_x2s_is_shipped_with_its_provenance() -> None:
    assert shipped_weights("demo-x2s") == WEIGHTS
    assert WEIGHTS.stat().st_size < 10 * 2**20
    model, card = resolve_model("demo-x2s")
    assert model is not None and card.radiographs is not None and card.roi_size == (64, 64, 64)
    assert card.provenance["pipeline"].startswith("x2s_demo_phantom (x2s_demo_phantom.yaml")
    for key in ("training", "epochs", "validation_dice", "test_dice", "data", "made_by", "preprocessing"):
        assert card.provenance[key], key
    assert "without background" in card.provenance["test_dice"]
    assert not {s for s, _ in FRESH} & set(TRAIN_SEEDS + TEST_SEEDS)


@pytest.mark.parametrize(("seed", "orientation"), FRESH)
def test_dicom_radiographs_of_a_fresh_phantom_become_its_organs(
    seed: int, orientation: str, tmp_path: Path
) -> None:
    card = resolve_model("demo-x2s", load_weights=False)[1]
    pair = phantom_pair(card, seed=seed, orientation=orientation)
    # stored the way a DX modality stores films: 12 bits, transposed display (rows = head to feet)
    ap = write_dx(tmp_path / "ap.dcm", pair.ap.array[0].T, pair.ap.spacing[0], orientation=("F", "L"))
    lateral = write_dx(
        tmp_path / "lat.dcm", pair.lateral.array[0].T, pair.lateral.spacing[0], orientation=("F", "P")
    )
    out = tmp_path / "labels.nii.gz"
    assert (
        main(["x2s", "predict", "--ap", str(ap), "--lateral", str(lateral), "-m", "demo-x2s", "-o", str(out)])
        == 0
    )
    labels = read_image(out, kind="label")
    assert labels.spacing == pytest.approx(pair.grid.spacing)
    truth = pair.labels.array[0]
    scores = {name: dice(labels.array[0] == v, truth == v) for v, (name, _) in PHANTOM_LABELS.items()}
    assert np.mean(list(scores.values())) > MIN_DICE, scores
    assert min(scores.values()) > 0.3, scores


def test_png_radiographs_need_and_use_the_pixel_size(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    card = resolve_model("demo-x2s", load_weights=False)[1]
    pair = phantom_pair(card, seed=7202, orientation="RAS")
    ap = write_png(tmp_path / "ap.png", pair.ap.array[0])
    lateral = write_png(tmp_path / "lateral.png", pair.lateral.array[0])
    out = tmp_path / "labels.nii.gz"
    command = ["x2s", "predict", "--ap", str(ap), "--lateral", str(lateral), "-m", "demo-x2s", "-o", str(out)]
    assert main(command) == 2
    assert "ap.png" in capsys.readouterr().err and not out.exists()
    assert main([*command, "--pixel-spacing", str(pair.ap.spacing[0])]) == 0
    printed = capsys.readouterr().out
    assert "pixel spacing" in printed and "mL" in printed
    truth = pair.labels.array[0]
    predicted = read_image(out, kind="label").array[0]
    assert np.mean([dice(predicted == v, truth == v) for v in PHANTOM_LABELS]) > MIN_DICE
    assert main(command + ["--pixel-spacing", "4.5"]) == 2  # an existing output is kept
    assert "already exists" in capsys.readouterr().err


def _uncalibrated_cr(path: Path, view: np.ndarray, orientation: tuple[str, str]) -> Path:
    """A CR film whose PixelSpacing is ``0\\0`` and has no ImagerPixelSpacing (as pydicom-data's RG1_UNCR)."""
    import pydicom

    write_dx(path, view, 1.0, orientation=orientation)
    ds = pydicom.dcmread(path)
    ds.Modality = "CR"
    del ds.ImagerPixelSpacing
    ds.PixelSpacing = [0, 0]
    ds.save_as(path)
    return path


def test_an_uncalibrated_cr_pair_is_refused_until_its_pixel_size_is_given(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """A 0\\0 CR once ran at an assumed 1 mm (a 50-litre liver on RG1_UNCR); now it is refused, naming the fix."""
    card = resolve_model("demo-x2s", load_weights=False)[1]
    pair = phantom_pair(card, seed=7203, orientation="LPS")
    ap = _uncalibrated_cr(tmp_path / "ap.dcm", pair.ap.array[0].T, ("F", "L"))
    lateral = _uncalibrated_cr(tmp_path / "lat.dcm", pair.lateral.array[0].T, ("F", "P"))
    assert main(["info", str(ap)]) == 0
    assert main(["convert", str(ap), "-o", str(tmp_path / "ap.nii.gz")]) == 0
    capsys.readouterr()

    out = tmp_path / "labels.nii.gz"
    command = ["x2s", "predict", "--ap", str(ap), "--lateral", str(lateral), "-m", "demo-x2s", "-o", str(out)]
    assert main(command) == 2
    error = capsys.readouterr().err
    assert f"{ap}: the film carries no usable pixel size (PixelSpacing 0\\0)" in error, error
    assert "--pixel-spacing MM" in error and "pixel-size box" in error and not out.exists()
    assert main([*command, "--pixel-spacing", str(pair.ap.spacing[0])]) == 0  # a given size wins
    truth = pair.labels.array[0]
    predicted = read_image(out, kind="label").array[0]
    assert np.mean([dice(predicted == v, truth == v) for v in PHANTOM_LABELS]) > MIN_DICE
