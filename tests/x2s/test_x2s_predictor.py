"""X2SPredictor: the official inference rule on prepared views, the output grid's geometry, and
the two predictors refusing each other's models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from x2s_factory import phantom_pair, tiny_card, tiny_network, write_dx

from medswin.errors import CancelledError, MedSwinError, ModelCardError
from medswin.inference.predictor import Predictor
from medswin.inference.x2s import X2SPredictor
from medswin.models.card import preset_card
from medswin.models.checkpoints import save_checkpoint
from medswin.transforms.radiograph import prepare_view

CARD = tiny_card()


@pytest.fixture(scope="module")
def network():  # type: ignore[no-untyped-def]
    return tiny_network(CARD, seed=3)


def test_labels_are_the_argmax_of_both_branches_summed(network, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pair = phantom_pair(CARD, seed=1001, orientation="oblique")
    ap = write_dx(tmp_path / "ap.dcm", pair.ap.array[0], pair.ap.spacing[0], orientation=("L", "F"))
    lateral = write_dx(
        tmp_path / "lat.dcm", pair.lateral.array[0], pair.lateral.spacing[0], orientation=("P", "F")
    )
    result = X2SPredictor(network, card=CARD, save_probabilities=True).predict(ap, lateral)

    a = torch.from_numpy(prepare_view(pair.ap, "ap", CARD).array)[None, None]
    b = torch.from_numpy(prepare_view(pair.lateral, "lateral", CARD).array)[None, None]
    with torch.no_grad():
        out_a, out_b = network(a, b)
    expected = (out_a + out_b).argmax(1)[0].numpy()
    agree = (result.labels.array[0] == expected).mean()
    assert agree > 0.999  # 12-bit DICOM storage may flip a near-tie voxel
    assert result.labels.shape == CARD.roi_size and result.labels.array.dtype == np.uint8
    assert result.probabilities is not None and result.probabilities.num_channels == CARD.num_classes
    np.testing.assert_allclose(result.probabilities.array.sum(axis=0), 1.0, atol=1e-5)
    # geometry: physical voxels from the films' pixel size, axes LPI, centred on the isocentre
    assert result.labels.spacing == pytest.approx((pair.ap.spacing[0],) * 3)
    assert result.labels.orientation.startswith("LPI")
    centre = result.labels.lps_affine @ np.append((np.asarray(CARD.roi_size) - 1) / 2, 1.0)
    np.testing.assert_allclose(centre[:3], 0.0, atol=1e-9)
    assert "PatientOrientation" in result.notes["ap"][0]


def test_a_checkpoint_carries_what_prediction_needs(network, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pair = phantom_pair(CARD, seed=1002)
    path = save_checkpoint(network, CARD, tmp_path / "tiny.safetensors")
    direct = X2SPredictor(network, card=CARD).predict(pair.ap, pair.lateral)
    loaded = X2SPredictor(str(path)).predict(pair.ap, pair.lateral)
    np.testing.assert_array_equal(direct.labels.array, loaded.labels.array)


def test_progress_is_reported_per_step_and_cancel_stops_before_the_next(network) -> None:  # type: ignore[no-untyped-def]
    pair = phantom_pair(CARD, seed=1003)
    predictor = X2SPredictor(network, card=CARD)
    seen: list[tuple[int, int, str]] = []
    predictor.predict(pair.ap, pair.lateral, progress=lambda *step: seen.append(step))
    assert seen == [
        (0, 3, "reading radiographs"),
        (1, 3, "preparing the views"),
        (2, 3, "network"),
        (3, 3, "done"),
    ]

    asked: list[str] = []

    def cancel_at_the_network() -> bool:
        return bool(asked) and asked[-1] == "preparing the views"

    with pytest.raises(CancelledError, match="before network"):
        predictor.predict(
            pair.ap, pair.lateral, progress=lambda *step: asked.append(step[2]), cancel=cancel_at_the_network
        )
    assert asked == ["reading radiographs", "preparing the views"]


def test_a_view_position_conflict_names_the_roles_as_the_caller_does(tmp_path: Path) -> None:
    from medswin.inference.x2s import view_position_conflict
    from medswin.io.readers import read_image

    pair = phantom_pair(CARD, seed=1004)
    lateral = read_image(write_dx(tmp_path / "ll.dcm", pair.lateral.array[0], 4.5, orientation=("P", "F")))
    assert view_position_conflict(lateral, "lateral") is None
    assert "given as --ap; are --ap and --lateral swapped?" in str(view_position_conflict(lateral, "ap"))
    message = view_position_conflict(lateral, "ap", roles=("the AP film", "the lateral film"))
    assert "ViewPosition LL" in str(message) and "given as the AP film; are the AP film and" in str(message)


def test_volume_and_biplanar_predictors_refuse_each_others_models(network) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MedSwinError, match="x2s predict"):
        Predictor(network, card=CARD)
    volume = preset_card("demo")
    with pytest.raises(MedSwinError, match="medswin predict"):
        X2SPredictor(volume.create_model(), card=volume)


def test_x2s_predict_takes_the_cpu_threads_as_medswin_predict_does(network, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """One loader for both predictors: ``--threads`` reaches the X-ray predictor too."""
    from medswin.cli.main import main

    model = save_checkpoint(network, CARD, tmp_path / "tiny.safetensors")
    pair = phantom_pair(CARD, seed=1005)
    ap = write_dx(tmp_path / "ap.dcm", pair.ap.array[0], pair.ap.spacing[0], orientation=("L", "F"))
    lateral = write_dx(
        tmp_path / "ll.dcm", pair.lateral.array[0], pair.lateral.spacing[0], orientation=("P", "F")
    )
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        argv = ["x2s", "predict", "--ap", str(ap), "--lateral", str(lateral), "-m", str(model)]
        assert main([*argv, "-o", str(tmp_path / "o.nii.gz"), "--device", "cpu", "--threads", "1"]) == 0
        assert torch.get_num_threads() == 1
        X2SPredictor(network, card=CARD, device="cpu", threads=2)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert (tmp_path / "o.nii.gz").is_file()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"channels": ["AP"]}, "two views"),
        ({"roi_size": (64, 32, 64)}, "X == Y"),
        ({"radiographs": {"cube_size": 32}}, "does not fit"),
    ],
)
def test_a_radiographs_card_is_checked(changes: dict, message: str) -> None:
    with pytest.raises(ModelCardError, match=message):
        CARD.replace(**changes)


def test_the_card_round_trips_with_its_radiographs_section() -> None:
    from medswin.models.card import ModelCard

    again = ModelCard.from_json(CARD.to_json())
    assert again.radiographs == CARD.radiographs and again.roi_size == CARD.roi_size
    with pytest.raises(ModelCardError, match="radiographs"):
        ModelCard.from_dict({**CARD.to_dict(), "radiographs": {"cube_size": 64, "resize": "nearest"}})
