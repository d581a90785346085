"""``--runtime`` reaches the predictors from ``predict``, ``submit`` and ``x2s predict``."""

from __future__ import annotations

from typing import Any

import pytest

import medswin.inference
import medswin.inference.x2s
from medswin.cli import x2s as x2s_cli
from medswin.cli.main import build_parser
from medswin.cli.predict import make_predictor


def test_predict_and_submit_pass_the_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []
    monkeypatch.setattr(medswin.inference, "Predictor", lambda model, **options: seen.append(options))
    parser = build_parser()
    args = parser.parse_args(
        ["predict", "-i", "x.nii.gz", "-o", "out", "-m", "demo", "--runtime", "openvino"]
    )
    make_predictor(args)
    args = parser.parse_args(["submit", "msd", "-m", "demo", "--runtime", "auto", "--precision", "bf16"])
    make_predictor(args)
    assert [(o["runtime"], o["precision"]) for o in seen] == [("openvino", "auto"), ("auto", "bf16")]
    defaults = parser.parse_args(["predict", "-i", "x", "-o", "o", "-m", "demo"])
    # the runtime's default is decided by the predictor: $MEDSWIN_RUNTIME, else auto
    assert (defaults.runtime, defaults.device, defaults.precision) == (None, "auto", "auto")
    with pytest.raises(SystemExit):
        parser.parse_args(["predict", "-i", "x", "-o", "o", "-m", "demo", "--runtime", "tensorrt"])


def test_x2s_predict_passes_the_runtime(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    seen: list[dict[str, Any]] = []

    class Stop(Exception):
        pass

    def fake(model: Any, **options: Any) -> None:
        seen.append(options)
        raise Stop

    monkeypatch.setattr(medswin.inference.x2s, "X2SPredictor", fake)
    args = build_parser().parse_args(
        [
            "x2s",
            "predict",
            "--ap",
            "a.dcm",
            "--lateral",
            "l.dcm",
            "-m",
            "demo-x2s",
            "-o",
            str(tmp_path / "o.nii.gz"),
            "--runtime",
            "onnxruntime",
        ]
    )
    with pytest.raises(Stop):
        x2s_cli.run_predict(args)
    assert seen[0]["runtime"] == "onnxruntime"
