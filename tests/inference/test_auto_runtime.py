"""``--runtime auto`` (the default): torch until OpenVINO is measured faster on this machine.

The rule is in :mod:`medswin.inference.auto_runtime`; these tests drive it through ``Predictor`` and
``medswin predict`` with the small convolutional network of ``test_backends.py`` (exports in seconds).
Which runtime wins is measured, so the tests check that the record follows the measurement, not
which one won.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medswin.errors import MedSwinError
from medswin.inference import Predictor, auto_runtime
from medswin.inference.backends import compiled_folder
from tests.inference.predictor_nets import clean_phantom
from tests.inference.test_backends import ConvNet, _card

pytest.importorskip("openvino")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MEDSWIN_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MEDSWIN_RUNTIME")  # the default, auto
    return tmp_path / "home"


def test_medswin_runtime_replaces_the_default_and_is_said(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDSWIN_RUNTIME", "torch")
    predictor = Predictor(ConvNet(), card=_card(), device="cpu")
    assert predictor.runtime == "torch" and predictor.choices["runtime"]["why"] == "MEDSWIN_RUNTIME=torch"
    assert (
        Predictor(ConvNet(), card=_card(), device="cpu", runtime="auto").runtime == "auto"
    )  # asked for wins
    monkeypatch.setenv("MEDSWIN_RUNTIME", "tensorrt")
    with pytest.raises(MedSwinError, match="MEDSWIN_RUNTIME='tensorrt' is not a runtime; set it to one of"):
        Predictor(ConvNet(), card=_card(), device="cpu")


def _image():
    return clean_phantom("LPS", shape=(40, 36, 30)).image


def _exports() -> list[Path]:
    return sorted(compiled_folder().glob("*/network.xml")) if compiled_folder().exists() else []


def test_a_case_that_cannot_repay_the_export_runs_torch_and_says_why(home: Path) -> None:
    predictor = Predictor(ConvNet(), card=_card(), device="cpu")
    assert predictor.runtime == "auto"
    result = predictor.predict(_image())
    assert result.runtime["name"] == "torch"
    why = result.runtime["choices"]["runtime"]["why"]
    assert why.startswith("auto: torch;") and f"{result.windows} network calls" in why
    assert predictor.runner.forgone > 0  # remembered for the next case (rent or buy)
    assert "export" not in result.timings and not _exports()  # nothing exported


def test_small_cases_export_once_what_they_could_have_saved_reaches_the_export_cost(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rent or buy: no small case repays the export alone, but a run of them does."""
    predictor = Predictor(ConvNet(), card=_card(), device="cpu")
    image = _image()
    first = predictor.predict(image)
    assert first.runtime["name"] == "torch" and not _exports()
    forgone = predictor.runner.forgone
    assert forgone > 0  # the first case's torch seconds
    # an export costing exactly what the first case could have saved: the next case tips the balance
    monkeypatch.setattr(auto_runtime, "EXPORT_FIXED_SECONDS", forgone * auto_runtime.PRIOR_SAVING)
    monkeypatch.setattr(auto_runtime, "EXPORT_WINDOWS", 0.0)
    second = predictor.predict(image)
    assert len(_exports()) == 1 and "measured now" in second.runtime["choices"]["runtime"]["why"]
    np.testing.assert_array_equal(second.labels.array, first.labels.array)


def test_a_case_that_repays_it_exports_measures_and_keeps_the_faster(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = _image()
    reference = Predictor(ConvNet(), card=_card(), device="cpu", runtime="torch").predict(image)
    # an export that costs nothing makes every multi-window case repay it: the measuring branch runs
    monkeypatch.setattr(auto_runtime, "EXPORT_FIXED_SECONDS", 0.0)
    monkeypatch.setattr(auto_runtime, "EXPORT_WINDOWS", 0.0)
    predictor = Predictor(ConvNet(), card=_card(), device="cpu")
    result = predictor.predict(image)
    (export,) = _exports()
    calibration = json.loads((export.parent / "calibration.json").read_text())
    (measured,) = calibration.values()
    seconds = measured["seconds_per_call"]
    assert set(seconds) == {"torch", "openvino"} and all(value > 0 for value in seconds.values())
    faster = min(seconds, key=seconds.__getitem__)
    assert result.runtime["name"] == faster
    assert result.runtime["choices"]["runtime"] == {
        "value": faster,
        "why": result.runtime["choices"]["runtime"]["why"],
    }
    assert "measured now" in result.runtime["choices"]["runtime"]["why"]
    assert result.timings["export"] > 0  # paid by this case, inside its inference time
    after = predictor.predict(image)  # the next case of the same run keeps the choice, says when it was made
    assert (
        after.runtime["name"] == faster
        and "measured on an earlier case of this run" in after.runtime["choices"]["runtime"]["why"]
    )
    np.testing.assert_array_equal(result.labels.array, reference.labels.array)

    # the next predictor (a later run) decides from the calibration at once, without exporting again
    monkeypatch.setattr(auto_runtime, "EXPORT_FIXED_SECONDS", 1e9)
    later = Predictor(ConvNet(), card=_card(), device="cpu")
    again = later.predict(image)
    assert (
        again.runtime["name"] == faster and "calibrated earlier" in again.runtime["choices"]["runtime"]["why"]
    )
    assert again.timings.get("export", 0.0) == 0.0
    np.testing.assert_array_equal(again.labels.array, reference.labels.array)


@pytest.mark.parametrize("winner", ["torch", "openvino"])
def test_the_calibration_of_this_machine_decides_and_another_machines_is_ignored(
    winner: str, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Predictor(
        ConvNet(), card=_card(), device="cpu", runtime="openvino"
    )  # the export, as a first run leaves it
    (export,) = _exports()
    loser = "openvino" if winner == "torch" else "torch"
    elsewhere = {"seconds_per_call": {winner: 9.0, loser: 1.0}}
    (export.parent / "calibration.json").write_text(
        json.dumps({"Another CPU | 64 threads | fp32": elsewhere})
    )
    undecided = Predictor(ConvNet(), card=_card(), device="cpu", precision="fp32")
    assert "until openvino is measured" in undecided.runner.why  # not another machine's numbers

    here = auto_runtime.machine_fingerprint("fp32")
    mine = {"seconds_per_call": {winner: 1.0, loser: 2.0}}
    (export.parent / "calibration.json").write_text(
        json.dumps({here: mine, "Another CPU | 64 threads | fp32": elsewhere})
    )
    result = Predictor(ConvNet(), card=_card(), device="cpu", precision="fp32").predict(_image())
    assert result.runtime["name"] == winner
    assert result.runtime["choices"]["runtime"]["why"].startswith(f"auto: {winner} measured faster")


def test_a_damaged_calibration_is_measured_again(home: Path) -> None:
    Predictor(ConvNet(), card=_card(), device="cpu", runtime="openvino")
    (export,) = _exports()
    (export.parent / "calibration.json").write_text("{not json")
    result = Predictor(ConvNet(), card=_card(), device="cpu").predict(_image())
    assert result.runtime["name"] == "torch" and "auto: torch;" in result.runtime["choices"]["runtime"]["why"]


def test_a_candidate_that_cannot_run_the_network_leaves_the_case_to_torch(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An export or compile failure (an operator OpenVINO lacks, a full disk) falls back, said in the record."""
    from medswin.errors import ExportError

    class Unexportable:
        @classmethod
        def create(cls, network, card, settings):  # type: ignore[no-untyped-def]
            raise ExportError("the exporter does not know aten::strange_op")

    monkeypatch.setattr(auto_runtime, "runner_class", lambda name: Unexportable)
    monkeypatch.setattr(auto_runtime, "EXPORT_FIXED_SECONDS", 0.0)
    monkeypatch.setattr(auto_runtime, "EXPORT_WINDOWS", 0.0)
    image = _image()
    reference = Predictor(ConvNet(), card=_card(), device="cpu", runtime="torch").predict(image)
    result = Predictor(ConvNet(), card=_card(), device="cpu").predict(image)
    assert result.runtime["name"] == "torch"
    assert (
        "openvino could not run this network (ExportError: the exporter does not know aten::strange_op)"
        in (result.runtime["choices"]["runtime"]["why"])
    )
    np.testing.assert_array_equal(result.labels.array, reference.labels.array)
