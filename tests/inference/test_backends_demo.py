"""Swin UNETR (the shipped demo) and a tiny 2D Swin-Unet label through OpenVINO and ONNX Runtime as in torch.

fp32 runtimes may differ from torch only at near-ties: at most 0.1% of the voxels. Each runtime
exports the network once (a minute or two here), into a weights cache shared by this module.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medswin.data.phantom import make_ct_phantom
from medswin.inference import Predictor

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("medswin_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MEDSWIN_HOME", str(folder))
        yield folder


@pytest.fixture(scope="module")
def case() -> tuple:
    """A phantom and torch fp32's labels for it."""
    image = make_ct_phantom(shape=(80, 72, 48), seed=5).image
    return image, Predictor("demo", runtime="torch").predict(image).labels.array


@pytest.mark.parametrize("runtime", ["openvino", "onnxruntime"])
def test_demo_labels_agree_with_torch(runtime: str, home: Path, case: tuple) -> None:
    pytest.importorskip(runtime)
    image, reference = case
    result = Predictor("demo", runtime=runtime).predict(image)
    assert result.runtime["name"] == runtime and result.timings["export"] > 0
    differ = float(np.mean(result.labels.array != reference))
    assert differ <= 0.001, f"{runtime}: {differ:.4%} of the voxels differ from torch"
    assert len(np.unique(reference)) > 3  # the phantom's organs were found, so the comparison means something


@pytest.mark.parametrize("runtime", ["openvino", "onnxruntime"])
def test_swin_unet_slices_agree_with_torch(runtime: str, home: Path) -> None:
    """A real 2D Swin-Unet (tiny: embed 12, 64x64 slices, 3 per call) runs its slice batches in the runtime."""
    import torch

    from medswin.models import preset_card
    from tests.inference.predictor_nets import clean_phantom

    pytest.importorskip(runtime)
    card = preset_card("swin_unet_synapse")
    card = card.replace(
        id="synapse_tiny",
        config={**card.config, "img_size": 64, "embed_dim": 12, "window_size": 4},
        roi_size=(64, 64),
    )
    torch.manual_seed(0)
    network = card.create_model()
    image = clean_phantom("LPS", shape=(40, 36, 6)).image
    options = {"card": card, "sw_batch_size": 3, "save_probabilities": True}
    reference = Predictor(network, runtime="torch", **options).predict(image)
    result = Predictor(network, runtime=runtime, **options).predict(image)
    np.testing.assert_allclose(result.probabilities.array, reference.probabilities.array, atol=1e-4)
    assert float(np.mean(result.labels.array != reference.labels.array)) <= 0.001
