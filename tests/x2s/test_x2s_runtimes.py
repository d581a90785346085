"""The shipped Swin-X2S demo model (two views in, two logit volumes out) through OpenVINO and ONNX
Runtime labels a DRR pair as torch does (fp32: at most 0.1% of the voxels differ, near-ties)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from x2s_factory import phantom_pair

from medswin.inference.x2s import X2SPredictor
from medswin.models.card import preset_card

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("runtime", ["openvino", "onnxruntime"])
def test_demo_x2s_labels_agree_with_torch(
    runtime: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip(runtime)
    monkeypatch.setenv("MEDSWIN_HOME", str(tmp_path))
    pair = phantom_pair(preset_card("demo-x2s"), seed=1003)
    reference = X2SPredictor("demo-x2s", save_probabilities=True).predict(pair.ap, pair.lateral)
    result = X2SPredictor("demo-x2s", runtime=runtime, save_probabilities=True).predict(pair.ap, pair.lateral)
    assert result.timings["export"] > 0 and "compile" in result.timings
    np.testing.assert_allclose(result.probabilities.array, reference.probabilities.array, atol=1e-3)
    differ = float(np.mean(result.labels.array != reference.labels.array))
    assert differ <= 0.001, f"{runtime}: {differ:.4%} of the voxels differ from torch"
    assert len(np.unique(reference.labels.array)) > 2
