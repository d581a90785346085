"""The shipped demo model: found by ``-m demo`` everywhere, and it segments fresh phantoms (Dice > 0.9)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medswin.cli.main import main
from medswin.data.phantom import PHANTOM_LABELS, make_ct_phantom
from medswin.inference.predictor import Predictor
from medswin.io import read_image, write_image
from medswin.metrics import dice
from medswin.models.resolve import resolve_model, shipped_weights
from medswin.training.demo_model import TEST_SEEDS, TRAIN_SEEDS

WEIGHTS = Path(__file__).resolve().parents[2] / "medswin" / "models" / "weights" / "demo.safetensors"
#: fresh phantoms: seeds used neither for training, validation nor the shipping check.
FRESH = ((7100, "LPS"), (7101, "RAS"), (7102, "oblique"))

pytestmark = pytest.mark.skipif(not WEIGHTS.is_file(), reason="demo model not built yet (make demo-model)")


def test_demo_resolves_to_the_shipped_file_with_its_card() -> None:
    assert shipped_weights("demo") == WEIGHTS
    assert WEIGHTS.stat().st_size < 10 * 2**20  # a few MB: float16 weights of a feature-size-12 model
    model, card = resolve_model("demo")
    assert model is not None and card.id == "demo"
    assert card.labels == {0: "background", **{k: v[0] for k, v in PHANTOM_LABELS.items()}}
    provenance = card.provenance
    assert provenance["pipeline"].startswith("demo_phantom (demo_phantom.yaml")
    for key in ("training", "epochs", "validation_dice", "test_dice", "date", "seed", "data", "made_by"):
        assert provenance[key], key
    assert not {s for s, _ in FRESH} & set(TRAIN_SEEDS + TEST_SEEDS)


def test_demo_segments_fresh_phantoms_in_every_orientation() -> None:
    predictor = Predictor("demo")
    scores: dict[str, list[float]] = {name: [] for name, _ in PHANTOM_LABELS.values()}
    for seed, orientation in FRESH:
        case = make_ct_phantom(orientation=orientation, seed=seed)
        labels = predictor.predict(case.image).labels
        assert labels.same_grid(case.image)
        for value, (name, _) in PHANTOM_LABELS.items():
            scores[name].append(dice(labels.array[0] == value, case.labels.array[0] == value))
    worst = {name: float(np.min(values)) for name, values in scores.items()}
    assert all(v > 0.9 for v in worst.values()), worst


def test_medswin_predict_with_m_demo(tmp_path: Path) -> None:
    case = make_ct_phantom(shape=(80, 80, 56), spacing=(3.6, 3.6, 4.6), orientation="oblique", seed=7200)
    write_image(case.image, tmp_path / "ct.nii.gz")
    assert (
        main(["-q", "predict", "-i", str(tmp_path / "ct.nii.gz"), "-o", str(tmp_path / "out"), "-m", "demo"])
        == 0
    )
    labels = read_image(tmp_path / "out" / "ct.nii.gz", kind="label")
    assert labels.same_grid(case.image, atol_mm=1e-3)
    for value in PHANTOM_LABELS:  # another voxel size than the model's: still every organ
        assert dice(labels.array[0] == value, case.labels.array[0] == value) > 0.8, value
