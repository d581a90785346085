"""One predictor contract: both predictor families are :class:`PredictorLike`, the batch runner reads
its members directly and refuses, before any case, a predictor that lacks one."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from batch_factory import write_nifti_cases

from medswin.batch import BatchOptions, discover_cases, run_batch
from medswin.batch.biplanar import BiplanarBatchPredictor
from medswin.batch.outputs import prediction_settings
from medswin.inference import Predictor, X2SPredictor
from medswin.inference.contract import PredictorLike, missing_members
from medswin.transforms.postprocess import Postprocess

sys.path.insert(0, str(Path(__file__).parents[1] / "x2s"))

from x2s_factory import tiny_card, tiny_network  # noqa: E402


@pytest.fixture(scope="module")
def volume_predictor(tiny_checkpoint: Path) -> Predictor:
    return Predictor(
        str(tiny_checkpoint), device="cpu", runtime="torch", postprocess=Postprocess(keep_labels=(1, 2))
    )


@pytest.fixture(scope="module")
def biplanar_predictor() -> BiplanarBatchPredictor:
    card = tiny_card(32)
    x2s = X2SPredictor(tiny_network(card), card=card, device="cpu")
    return BiplanarBatchPredictor(x2s, orientations=("LF", None), pixel_spacing=(0.5, None))


def test_both_predictor_families_meet_the_contract(
    volume_predictor: Predictor, biplanar_predictor: BiplanarBatchPredictor
) -> None:
    for predictor in (volume_predictor, biplanar_predictor):
        assert isinstance(predictor, PredictorLike)
        assert missing_members(predictor) == []


def test_recorded_settings_come_from_the_contract_members(
    volume_predictor: Predictor, biplanar_predictor: BiplanarBatchPredictor
) -> None:
    volume = prediction_settings(volume_predictor)
    assert volume["model"] == "tiny_batch"
    assert volume["precision"] == volume_predictor.precision
    assert volume["overlap"] == volume_predictor.overlap and volume["mode"] == volume_predictor.mode
    assert volume["labels_subset"] == [1, 2]
    assert volume["runtime"] == "torch"  # asked for; auto is not recorded
    assert "view_orientations" not in volume
    biplanar = prediction_settings(biplanar_predictor)
    # no sliding window, TTA or clean-up: recorded as None (as records written before the contract)
    absent = ("overlap", "tta", "mode", "labels_subset", "keep_largest", "min_size_mm3")
    assert {name: biplanar[name] for name in absent} == dict.fromkeys(absent)
    assert biplanar["remap"] == {}
    assert biplanar["view_orientations"] == ["LF", None]
    assert biplanar["pixel_spacing_mm"] == [0.5, None]


class _NoTTA:
    """A volume predictor seen through a wrapper that forgot to say whether it mirrors (no ``tta``)."""

    def __init__(self, inner: Predictor) -> None:
        self.inner = inner
        self.card, self.precision, self.overlap = inner.card, inner.precision, inner.overlap
        self.runtime = inner.runtime
        self.mode, self.postprocess, self.save_probabilities = inner.mode, inner.postprocess, False
        self.input_settings: dict = {}

    def predict(self, source, progress=None, cancel=None):  # type: ignore[no-untyped-def]
        return self.inner.predict(source, progress, cancel)


def test_run_batch_refuses_a_predictor_missing_a_member_before_any_case(
    volume_predictor: Predictor, tmp_path: Path
) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    write_nifti_cases(inputs, ["a"])
    cases = discover_cases([inputs])
    wrapped = _NoTTA(volume_predictor)
    assert not isinstance(wrapped, PredictorLike)
    with pytest.raises(TypeError, match=r"run_batch needs a PredictorLike; _NoTTA lacks tta$"):
        run_batch(wrapped, cases, tmp_path / "out", BatchOptions())
    assert not (tmp_path / "out").exists()
    wrapped.tta = False  # the same wrapper with the member runs the case
    result = run_batch(wrapped, cases, tmp_path / "out", BatchOptions())
    assert [o.status for o in result.outcomes] == ["done"]
