"""Logits -> labels (argmax / painted regions) and label clean-up."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medswin.io.image import Image
from medswin.models import ModelCard, Region, preset_card
from medswin.transforms import Postprocess, keep_largest_component, logits_to_labels, logits_to_probabilities
from medswin.transforms.postprocess import remove_small_components


def test_argmax_maps_channels_to_label_values() -> None:
    card = preset_card("swin_unetr_btcv").replace(labels={0: "bg", 2: "a", 7: "b"})
    logits = torch.zeros(3, 4, 1)
    logits[1, 1] = 5
    logits[2, 2] = 5
    assert logits_to_labels(logits, card).flatten().tolist() == [0, 2, 7, 0]
    assert logits_to_labels(logits, card).dtype == torch.uint8


def test_wide_labels_use_a_wider_type() -> None:
    card = preset_card("swin_unetr_btcv").replace(labels={0: "bg", 300: "x"})
    logits = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    assert logits_to_labels(logits, card).tolist() == [300, 0]


def test_regions_painted_in_order_at_probability_half() -> None:
    card = preset_card("swin_unetr_brats21")  # WT(ch 1) -> 2, TC(ch 0) -> 1, ET(ch 2) -> 3
    logits = torch.full((3, 5), -3.0)
    logits[1, :4] = 2.0  # whole tumour
    logits[0, 1:3] = 0.0  # tumour core: sigmoid 0.5 exactly counts
    logits[2, 2] = 1.0  # enhancing
    assert logits_to_labels(logits, card).tolist() == [2, 1, 3, 2, 0]
    torch.testing.assert_close(logits_to_probabilities(logits, card), torch.sigmoid(logits))


def test_region_reading_a_missing_channel_is_refused() -> None:
    card = ModelCard(
        id="r",
        architecture="swin_unetr",
        config={},
        channels=["a"],
        labels={0: "bg", 1: "x"},
        activation="sigmoid",
        regions=[Region("x", 4, 1)],
    )
    with pytest.raises(Exception, match="reads channel 4"):
        logits_to_labels(torch.zeros(2, 3), card)


def _blobs() -> np.ndarray:
    labels = np.zeros((20, 20, 10), dtype=np.uint8)
    labels[2:8, 2:8, 2:8] = 1  # 216 voxels
    labels[12:14, 12:14, 2:4] = 1  # 8 voxels
    labels[15:19, 2:6, 2:6] = 2  # 64 voxels
    labels[2:3, 15:16, 8:9] = 2  # 1 voxel
    return labels


def test_keep_largest_component_per_label() -> None:
    labels = keep_largest_component(_blobs())
    assert (labels == 1).sum() == 216 and (labels == 2).sum() == 64
    only_one = keep_largest_component(_blobs(), values=[2])
    assert (only_one == 1).sum() == 224 and (only_one == 2).sum() == 64


def test_diagonal_neighbours_are_one_component() -> None:
    labels = np.zeros((4, 4, 4), dtype=np.uint8)
    labels[0, 0, 0] = labels[1, 1, 1] = 1
    assert (keep_largest_component(labels) == 1).sum() == 2


def test_remove_small_components() -> None:
    labels = remove_small_components(_blobs(), min_voxels=10)
    assert (labels == 1).sum() == 216 and (labels == 2).sum() == 64


def test_postprocess_order_and_volume_units() -> None:
    image = Image(_blobs()[None], (2.0, 2.0, 2.0), (0, 0, 0), np.eye(3), kind="label")
    # 8 mm³ per voxel: the 8-voxel blob is 64 mm³, the single voxel 8 mm³
    cleaned = Postprocess(min_size_mm3=65).apply(image)
    assert (cleaned.array == 1).sum() == 216 and (cleaned.array == 2).sum() == 64
    assert cleaned.same_grid(image)
    subset = Postprocess(keep_labels=(2,), keep_largest=True, remap={2: 300}).apply(image)
    assert set(np.unique(subset.array)) == {0, 300} and subset.array.dtype == np.uint16
    assert (subset.array == 300).sum() == 64
    assert Postprocess().is_identity and Postprocess().apply(image) is image
    with pytest.raises(ValueError, match="min_size_mm3"):
        Postprocess(min_size_mm3=-1)


def test_softmax_probabilities_in_place() -> None:
    card = preset_card("swin_unetr_btcv").replace(labels={0: "bg", 1: "a", 2: "b"})
    logits = torch.tensor([[1.0, 900.0], [2.0, 0.0], [3.0, -5.0]])
    expected = torch.softmax(logits, dim=0)
    torch.testing.assert_close(logits_to_probabilities(logits, card), expected)
    assert logits[0, 0] == 1.0  # untouched by default
    same = logits_to_probabilities(logits, card, inplace=True)
    assert same.data_ptr() == logits.data_ptr() and torch.isfinite(same).all()
    torch.testing.assert_close(same, expected)
