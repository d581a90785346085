"""A model family added as docs/architecture.md says (one TaskKind, one predictor) needs nothing else:
the family is chosen once from the card, the volume predictor refuses its models, the shared loader
sets it up, export and the fit check follow its TaskKind, and run_batch runs it with records."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from batch_factory import ct_case, write_nifti_cases

import medswin.tasks
from medswin.batch import BatchOptions, discover_cases, run_batch
from medswin.errors import MedSwinError
from medswin.inference.contract import PredictorLike
from medswin.inference.export import network_io
from medswin.inference.predictor import Prediction, Predictor, load_for_inference
from medswin.models import preset_card
from medswin.models.fit import check_fit
from medswin.tasks import VOLUME, TaskKind, task_for


class BoneMaskPredictor:
    """A stand-in family: labels bone (HU > 300) on the input grid; its network is loaded, not run."""

    overlap = mode = tta = postprocess = None
    save_probabilities = False

    def __init__(self, model: Any, *, card: Any, threads: int | None = None) -> None:
        loaded = load_for_inference(model, card, BONE, device="cpu", precision="fp32", threads=threads)
        self.card, self.precision, self.network = loaded.card, loaded.precision, loaded.network
        self.runtime = "torch"  # a threshold; the network is not run

    @property
    def input_settings(self) -> dict[str, Any]:
        return {"bone_hu": 300}

    def predict(self, image: Any, progress: Callable | None = None, cancel: Any = None) -> Prediction:
        start = time.perf_counter()
        labels = image.with_array((np.asarray(image.array[:1]) > 300).astype(np.uint8), kind="label")
        return Prediction(labels, None, {"total": time.perf_counter() - start}, self.card, windows=1)


BONE = TaskKind(
    name="bone",
    claims=lambda card: card.id == "bone-mask",
    takes="labels bone by its density",
    run_with="tests.BoneMaskPredictor",
    predictor=lambda: BoneMaskPredictor,
    image_channels=False,
    network_io=lambda card, batch: ({"ct": (batch, 1, 8, 8, 8)}, {"bone": (batch, 2, 8, 8, 8)}),
    check_pipeline=VOLUME.check_pipeline,
    train_transforms=VOLUME.train_transforms,
    loss=VOLUME.loss,
    validate=VOLUME.validate,
    samples=VOLUME.samples,
)


@pytest.fixture
def bone_family(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(medswin.tasks, "TASKS", (BONE, *medswin.tasks.TASKS))
    card = preset_card("demo").replace(id="bone-mask", labels={0: "background", 1: "bone"})
    return card, card.create_model()


def test_a_new_family_runs_through_the_shared_code(bone_family: Any, tmp_path: Path) -> None:
    card, network = bone_family
    assert task_for(card) is BONE
    assert network_io(card, 2) == ({"ct": (2, 1, 8, 8, 8)}, {"bone": (2, 2, 8, 8, 8)})
    two_channels = ct_case(1).with_array(np.repeat(ct_case(1).array, 2, axis=0))
    assert "channels" not in {w.check for w in check_fit(two_channels, card)}
    with pytest.raises(
        MedSwinError, match=r"'bone-mask' \(swin_unetr\) labels bone .*tests\.BoneMaskPredictor"
    ):
        Predictor(network, card=card, device="cpu")

    predictor = BoneMaskPredictor(network, card=card)
    assert isinstance(predictor, PredictorLike)
    inputs = tmp_path / "in"
    inputs.mkdir()
    write_nifti_cases(inputs, ["a", "b"])
    result = run_batch(predictor, discover_cases([inputs]), tmp_path / "out", BatchOptions())
    assert [o.status for o in result.outcomes] == ["done", "done"]
    record = result.outcomes[0].record
    assert record["settings"]["model"] == "bone-mask" and record["settings"]["bone_hu"] == 300
    assert record["labels"]["bone"]["voxels"] > 0
