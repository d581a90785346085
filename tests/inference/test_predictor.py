"""Predictor: labels land on the input's exact grid, every path (TTA, bf16, 2D slices, sigmoid
regions, multi-channel, probabilities) runs through ``Predictor.predict``, progress and cancel work."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from predictor_nets import (
    DENSE_EDGES,
    DENSE_LABELS,
    PHANTOM_TO_CARD,
    IntensityNet,
    RampNet,
    RegionNet,
    clean_phantom,
    expected_labels,
    intensity_card,
    region_card,
    tiny_swin_card,
)

from medswin.errors import CancelledError, CheckpointError, MedSwinError
from medswin.inference import Predictor
from medswin.io.image import Image
from medswin.models.inputs import ModelInputError
from medswin.transforms import Postprocess


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else 2.0 * float((a & b).sum()) / float(total)


@pytest.mark.parametrize("orientation", ["LPS", "RAS", "oblique"])
def test_reoriented_model_grid_gives_exact_labels(orientation: str) -> None:
    """Card without resampling: the model grid is the input grid permuted/flipped, so labels are exact."""
    case = clean_phantom(orientation)
    prediction = Predictor(IntensityNet(), card=intensity_card()).predict(case.image)
    labels = prediction.labels
    assert labels.kind == "label" and labels.array.dtype == np.uint8
    assert labels.same_grid(case.image, atol_mm=0) and labels.meta == case.image.meta
    np.testing.assert_array_equal(labels.array[0], expected_labels(case.image.array[0]))
    truth = np.vectorize(PHANTOM_TO_CARD.get)(case.labels.array[0])
    np.testing.assert_array_equal(labels.array[0], truth)
    assert set(prediction.timings) == {"preprocess", "inference", "resample", "postprocess", "qc", "total"}


@pytest.mark.parametrize("orientation", ["LPS", "RAS", "oblique"])
def test_resampled_model_grid_returns_to_the_same_physical_voxels(orientation: str) -> None:
    """Card resampling to 2x2x3 mm: labels come back on the input grid, structures where they are.

    Reference computed without MONAI: SimpleITK resamples the image onto the model grid in physical
    space, IntensityNet's thresholds are applied, and the labels go back by nearest neighbour.
    """
    from medswin.io.geometry import resample_to_grid, resample_to_reference
    from medswin.transforms import preprocess

    case = clean_phantom(orientation, shape=(56, 52, 28))
    card = intensity_card(spacing=(2.0, 2.0, 3.0), labels=DENSE_LABELS)
    labels = Predictor(IntensityNet(edges=DENSE_EDGES), card=card).predict(case.image).labels
    assert labels.same_grid(case.image, atol_mm=0)

    grid = Image.from_metatensor(preprocess(case.image, card))  # only its geometry is used
    hu = resample_to_grid(case.image, grid.shape, grid.spacing, grid.origin, grid.direction).array[0]
    on_model_grid = grid.with_array(expected_labels(hu, DENSE_EDGES, (0, 1, 2))[None], kind="label")
    reference = resample_to_reference(on_model_grid, case.image).array[0]
    assert (labels.array[0] == reference).mean() > 0.995

    # the bone's centre of mass in world coordinates is where the phantom painted it
    truth = case.labels.array[0] == 5
    predicted = labels.array[0] == 2
    assert _dice(predicted, truth) > 0.7
    world = case.image.lps_affine[:3]
    centre_predicted = world @ np.append(np.argwhere(predicted).mean(axis=0), 1.0)
    centre_truth = world @ np.append(np.argwhere(truth).mean(axis=0), 1.0)
    assert np.linalg.norm(centre_predicted - centre_truth) < 0.5


def test_probabilities_on_the_input_grid_match_the_labels() -> None:
    case = clean_phantom("oblique")
    predictor = Predictor(
        IntensityNet(), card=intensity_card(spacing=(1.5, 1.5, 2.0)), save_probabilities=True
    )
    prediction = predictor.predict(case.image)
    probabilities = prediction.probabilities
    assert probabilities is not None and probabilities.same_grid(case.image, atol_mm=0)
    assert probabilities.array.shape == (5, *case.image.shape) and probabilities.array.dtype == np.float32
    inside = probabilities.array.sum(axis=0) > 0.5  # voxels the model grid covers
    np.testing.assert_allclose(probabilities.array.sum(axis=0)[inside], 1.0, atol=1e-4)
    channel_of = {value: channel for channel, value in enumerate((0, 1, 2, 3, 5))}
    argmax = probabilities.array.argmax(axis=0)
    labels = prediction.labels.array[0]
    agree = argmax == np.vectorize(channel_of.get)(labels)
    assert agree[inside].mean() > 0.95  # labels: nearest; probabilities: linear, so boundaries may differ


def test_tta_averages_mirrored_predictions() -> None:
    case = clean_phantom("LPS", shape=(24, 20, 16))
    card = intensity_card(
        labels={0: "background", 1: "ramp"},
        spacing=None,
        orientation=None,
        roi_size=(16, 16, 16),
        overlap=0.0,
    )
    plain = Predictor(RampNet(), card=card, save_probabilities=True, mode="constant").predict(case.image)
    mirrored = Predictor(RampNet(), card=card, save_probabilities=True, tta=True, mode="constant")
    averaged = mirrored.predict(case.image)
    # the ramp and its mirror cancel: every voxel is a 50/50 tie after TTA, never before
    np.testing.assert_allclose(averaged.probabilities.array, 0.5, atol=1e-6)
    assert np.abs(plain.probabilities.array - 0.5).max() > 0.4


def test_tta_and_bf16_run_a_real_swin_unetr() -> None:
    torch.manual_seed(0)
    card = tiny_swin_card()
    network = card.create_model()
    dtypes: list[torch.dtype] = []
    network.out.register_forward_hook(lambda module, args, output: dtypes.append(output.dtype))
    case = clean_phantom("oblique")
    predictor = Predictor(network, card=card, precision="bf16", tta=True)
    prediction = predictor.predict(case.image)
    assert prediction.labels.same_grid(case.image, atol_mm=0)
    assert prediction.labels.array.dtype == np.uint8 and prediction.labels.array.max() < 14
    assert dtypes and set(dtypes) == {torch.bfloat16}
    assert len(dtypes) == 8 * prediction.windows  # identity + 7 mirror combinations per window


def test_fast_attention_is_switched_on_only_while_predicting() -> None:
    torch.manual_seed(0)
    card = tiny_swin_card()
    network = card.create_model()
    attention = [m for m in network.modules() if hasattr(m, "use_flash_attention")]
    assert attention and not any(m.use_flash_attention for m in attention)
    seen: list[bool] = []
    attention[0].register_forward_hook(lambda module, args, output: seen.append(module.use_flash_attention))
    case = clean_phantom("RAS")
    fast = Predictor(network, card=card).predict(case.image)
    assert seen and all(seen) and not any(m.use_flash_attention for m in attention)
    slow = Predictor(network, card=card, fast_attention=False).predict(case.image)
    assert (fast.labels.array == slow.labels.array).mean() > 0.999


def test_two_d_model_runs_slice_by_slice_on_a_volume() -> None:
    case = clean_phantom("oblique")
    network = IntensityNet(dims=2)
    card = intensity_card(roi_size=(32, 32), slice_axis=2, spacing=(2.0, 2.0), architecture="swin_unet")
    prediction = Predictor(network, card=card).predict(case.image)
    assert prediction.labels.same_grid(case.image, atol_mm=0)
    assert {shape[2:] for shape in network.calls} == {(32, 32)}
    slices = set(network.calls)
    assert len(network.calls) == prediction.windows and len(slices) == 1
    truth = np.vectorize(PHANTOM_TO_CARD.get)(case.labels.array[0])
    assert (prediction.labels.array[0] == truth).mean() > 0.95


def test_real_swin_unet_runs_on_slices() -> None:
    from medswin.models import preset_card

    card = preset_card("swin_unet_synapse")
    card = card.replace(
        id="synapse_tiny",
        config={**card.config, "img_size": 64, "embed_dim": 12, "window_size": 4},
        roi_size=(64, 64),
    )
    torch.manual_seed(0)
    case = clean_phantom("LPS", shape=(40, 36, 6))
    prediction = Predictor(card.create_model(), card=card, sw_batch_size=3).predict(case.image)
    assert prediction.labels.same_grid(case.image, atol_mm=0)
    assert prediction.windows == 6 and prediction.labels.array.max() <= 8


def test_sigmoid_regions_are_painted_in_card_order() -> None:
    case = clean_phantom("RAS")
    labels = Predictor(RegionNet(), card=region_card()).predict(case.image).labels.array[0]
    truth = case.labels.array[0]
    expected = np.where(truth == 5, 2, np.where(np.isin(truth, (2, 3, 4)), 1, 0))
    np.testing.assert_array_equal(labels, expected)
    reversed_card = region_card().replace(regions=list(reversed(region_card().regions)))
    labels = Predictor(RegionNet(), card=reversed_card).predict(case.image).labels.array[0]
    assert not (labels == 2).any()  # 'dense' painted last covers the bone


def test_multichannel_card_takes_a_multichannel_image() -> None:
    case = clean_phantom("LPS")
    card = intensity_card(channels=["CT", "copy"])
    two = case.image.with_array(np.concatenate([case.image.array, -case.image.array]))
    labels = Predictor(IntensityNet(), card=card).predict(two).labels
    np.testing.assert_array_equal(labels.array[0], expected_labels(case.image.array[0]))
    with pytest.raises(
        ModelInputError, match=r"1 channel\(s\) but model 'intensity_test' takes 2 \(CT, copy\)"
    ):
        Predictor(IntensityNet(), card=card).predict(case.image)


def test_dimension_mismatches_are_refused() -> None:
    case = clean_phantom("LPS")
    flat = Image(case.image.array[..., 0], case.image.spacing[:2], case.image.origin[:2], np.eye(2))
    with pytest.raises(ModelInputError, match="3D but the image is 2D"):
        Predictor(IntensityNet(), card=intensity_card()).predict(flat)
    card = intensity_card(roi_size=(32, 32))
    with pytest.raises(ModelInputError, match="sets no slice_axis"):
        Predictor(IntensityNet(), card=card).predict(case.image)
    with pytest.raises(MedSwinError, match="label image"):
        Predictor(IntensityNet(), card=intensity_card()).predict(case.labels)


def test_two_d_image_with_two_d_card() -> None:
    case = clean_phantom("LPS", shape=(40, 36, 3))
    flat = Image(case.image.array[..., 1], case.image.spacing[:2], case.image.origin[:2], np.eye(2))
    card = intensity_card(roi_size=(32, 32), spacing=(1.5, 1.5))
    labels = Predictor(IntensityNet(dims=2), card=card).predict(flat).labels
    assert labels.same_grid(flat, atol_mm=0)
    truth = np.vectorize(PHANTOM_TO_CARD.get)(case.labels.array[0, ..., 1])
    assert (labels.array[0] == truth).mean() > 0.95


def test_progress_reports_every_window() -> None:
    case = clean_phantom("LPS", shape=(48, 40, 24))
    calls: list[tuple[int, int, str]] = []
    card = intensity_card(roi_size=(16, 16, 16))
    prediction = Predictor(IntensityNet(), card=card, sw_batch_size=2).predict(
        case.image, progress=lambda done, total, message: calls.append((done, total, message))
    )
    total = prediction.windows
    assert total > 4 and calls[0] == (0, total, "sliding window")
    window_calls = [done for done, _, message in calls if message == "sliding window"]
    assert window_calls == [0, *range(2, total, 2), total] or window_calls == [0, *range(2, total + 1, 2)]
    assert calls[-1] == (total, total, "resampling onto the input grid")


@pytest.mark.parametrize("style", ["callable", "event"])
def test_cancel_raises_and_stops_the_windows(style: str) -> None:
    case = clean_phantom("LPS", shape=(48, 40, 24))
    network = IntensityNet()
    event = threading.Event()
    cancel = event if style == "event" else event.is_set

    def progress(done: int, total: int, message: str) -> None:
        if done >= 2:
            event.set()

    with pytest.raises(CancelledError, match="cancelled after 2 of"):
        Predictor(network, card=intensity_card(roi_size=(16, 16, 16))).predict(
            case.image, progress=progress, cancel=cancel
        )
    assert len(network.calls) == 2


def test_postprocess_runs_on_the_input_grid() -> None:
    case = clean_phantom("LPS")
    keep = Postprocess(keep_labels=(1, 5), remap={5: 9})
    labels = Predictor(IntensityNet(), card=intensity_card(), postprocess=keep).predict(case.image).labels
    assert set(np.unique(labels.array)) <= {0, 1, 9} and (labels.array == 9).any()


def test_model_sources(tmp_path) -> None:
    from medswin.models import save_checkpoint

    card = tiny_swin_card()
    torch.manual_seed(0)
    path = save_checkpoint(card.create_model(), card, tmp_path / "tiny.safetensors")
    predictor = Predictor(str(path))
    assert predictor.card == card and "btcv_tiny" in repr(predictor)
    with pytest.raises(CheckpointError, match="no weights"):
        Predictor("swin_unetr_btcv")
    with pytest.raises(CheckpointError, match="without weights"):
        Predictor(card)
    with pytest.raises(MedSwinError, match="needs card="):
        Predictor(IntensityNet())
    with pytest.raises(ValueError, match="precision"):
        Predictor(IntensityNet(), card=card, precision="int8")


def test_fp16_autocast_path() -> None:
    torch.manual_seed(0)
    network = torch.nn.Conv3d(1, 5, kernel_size=1)
    dtypes: list[torch.dtype] = []
    network.register_forward_hook(lambda module, args, output: dtypes.append(output.dtype))
    case = clean_phantom("oblique")
    labels = Predictor(network, card=intensity_card(), precision="fp16").predict(case.image).labels
    assert labels.same_grid(case.image, atol_mm=0) and set(dtypes) == {torch.float16}
