"""Training data: datalist cases -> cached, preprocessed, augmented MONAI samples.

The chain for one training case (MONAI dictionary transforms, ``"image"`` and ``"label"``):

1. :class:`LoadCased` -- medswin's own readers (the same geometry the Predictor sees), channels
   stacked in datalist order, labels remapped (``data.label_remap``) and checked against the card;
2. :class:`CardPreprocessd` -- the model card's preprocessing, i.e. exactly what
   :func:`medswin.transforms.preprocessing.build_preprocess` does at prediction time, with the label
   taken onto the same model grid by nearest neighbour;
3. optional ``CropForegroundd`` (research-contributions recipes), padding up to the crop size;
   everything so far is deterministic and cached by ``CacheDataset``;
4. random crop (``RandCropByPosNegLabeld`` or ``RandSpatialCropd``), for 2D models trained on
   volumes one slice along the card's ``slice_axis`` (then squeezed), flips, 90° and free
   rotations, intensity scale/shift;
5. for sigmoid cards, :class:`LabelsToRegionsd` turns the label map into one mask per region.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from monai.transforms import Transform

from medswin.data.manifest import CaseEntry
from medswin.errors import ManifestError, MedSwinError
from medswin.io.image import Image
from medswin.models.card import ModelCard

__all__ = [
    "CardPreprocessd",
    "LabelsToRegionsd",
    "LoadCased",
    "build_train_transforms",
    "declared_labels",
    "image_spatial_dims",
    "read_case_images",
    "read_validation_case",
    "region_targets",
    "remap_labels",
    "training_roi",
]

log = logging.getLogger(__name__)


def image_spatial_dims(card: ModelCard) -> int:
    """Axes of the training images: 3 for a 2D card sliced along ``slice_axis``, else the card's."""
    return 3 if card.spatial_dims == 2 and card.slice_axis is not None else card.spatial_dims


def training_roi(card: ModelCard, roi: Sequence[int] | None) -> tuple[int, ...]:
    """Crop size on the image grid: the card's ROI (or ``roi``), with 1 inserted at the slice axis for 2D-on-3D."""
    size = list(roi if roi is not None else card.roi_size)
    if image_spatial_dims(card) == 3 and card.spatial_dims == 2:
        size.insert(int(card.slice_axis), 1)
    return tuple(int(s) for s in size)


def remap_labels(array: np.ndarray, remap: Mapping[int, int]) -> np.ndarray:
    """Replace label values (e.g. BraTS 2021 ``4 -> 3``, ISIC mask ``255 -> 1``), all at once."""
    if not remap:
        return array
    out = array.copy()
    for source, target in remap.items():
        out[array == source] = target
    return out


def read_case_images(entry: CaseEntry) -> Image:
    """A case's channel files read with medswin's readers and stacked (they must share one grid)."""
    from medswin.errors import GeometryError
    from medswin.io.geometry import stack_channels
    from medswin.io.readers import read_image

    try:
        return stack_channels([read_image(p) for p in entry.images], entry.images)
    except GeometryError as error:
        raise ManifestError(f"case {entry.case_id}: {error}") from None


def _read_label(entry: CaseEntry, reference: Image, card: ModelCard, remap: Mapping[int, int]) -> Image:
    from medswin.io.readers import read_image

    if entry.label is None:
        raise ManifestError(f"case {entry.case_id}: no label file; training and validation cases need one")
    label = read_image(entry.label, kind="label")
    difference = label.grid_difference(reference)
    if difference is not None:
        raise ManifestError(
            f"case {entry.case_id}: label {entry.label} is not on the image grid ({difference})"
        )
    return declared_labels(entry, label, card, remap)


def declared_labels(entry: CaseEntry, label: Image, card: ModelCard, remap: Mapping[int, int]) -> Image:
    """``label`` after ``data.label_remap``, refused when it holds a value the card does not declare."""
    array = remap_labels(np.asarray(label.array), remap)
    unknown = sorted(set(np.unique(array).tolist()) - set(card.labels))
    if unknown:
        raise ManifestError(
            f"case {entry.case_id}: label {entry.label} holds value(s) {unknown} that model card {card.id!r} does not "
            f"declare ({sorted(card.labels)}); map them with data.label_remap in the pipeline"
        )
    return label.with_array(array, kind="label")


def _check_channels(entry: CaseEntry, image: Image, card: ModelCard) -> None:
    if image.num_channels != len(card.channels):
        raise ManifestError(
            f"case {entry.case_id}: {image.num_channels} image channel(s) but model card {card.id!r} takes "
            f"{len(card.channels)} ({', '.join(card.channels)})"
        )
    if image.spatial_dims != image_spatial_dims(card):
        raise ManifestError(
            f"case {entry.case_id}: a {image.spatial_dims}D image, but model card {card.id!r} trains on "
            f"{image_spatial_dims(card)}D images"
        )


def read_validation_case(entry: CaseEntry, card: ModelCard, remap: Mapping[int, int]) -> tuple[Image, Image]:
    """``(image, label)`` on the case's own grid, as the Predictor and the metrics see them."""
    try:
        image = read_case_images(entry)
        _check_channels(entry, image, card)
        return image, _read_label(entry, image, card, remap)
    except ManifestError:
        raise
    except MedSwinError as error:
        raise ManifestError(f"case {entry.case_id}: {error}") from None


class LoadCased(Transform):
    """Dictionary transform: ``{"case": CaseEntry}`` -> ``{"image", "label"}`` MetaTensors (channel-first, RAS affine)."""

    def __init__(self, card: ModelCard, label_remap: Mapping[int, int]) -> None:
        self.card = card
        self.label_remap = dict(label_remap)

    def __call__(self, data: Mapping[str, Any]) -> dict[str, Any]:
        entry: CaseEntry = data["case"]
        image, label = read_validation_case(entry, self.card, self.label_remap)
        return {
            "case_id": entry.case_id,
            "image": image.with_array(np.asarray(image.array, dtype=np.float32)).to_metatensor(),
            "label": label.with_array(
                np.asarray(label.array, dtype=np.uint8 if label.array.max() < 256 else np.int16)
            ).to_metatensor(),
        }


class CardPreprocessd(Transform):
    """Dictionary transform: the card's preprocessing on ``image``; ``label`` onto the same model grid (nearest)."""

    def __init__(self, card: ModelCard) -> None:
        from monai.transforms import Compose

        from medswin.transforms.preprocessing import build_preprocess, grid_transforms

        dims = image_spatial_dims(card)
        self.image_chain = build_preprocess(card, dims)
        self.label_chain = Compose(grid_transforms(card, dims, labels=True))

    def __call__(self, data: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(data)
        out["image"] = self.image_chain(data["image"])
        label = self.label_chain(data["label"])
        if tuple(label.shape[1:]) != tuple(out["image"].shape[1:]):
            raise ManifestError(
                f"case {data.get('case_id')}: image and label came out on different model grids "
                f"{tuple(out['image'].shape[1:])} vs {tuple(label.shape[1:])}"
            )
        out["label"] = label
        return out


def region_targets(label: Any, regions: Sequence[tuple[int, ...]]) -> Any:
    """``(1, *S)`` label map -> ``(R, *S)`` float masks, channel ``r`` = label in ``regions[r]``."""
    import torch

    masks = [torch.isin(label[0], torch.as_tensor(list(values), device=label.device)) for values in regions]
    return torch.stack(masks).float()


class LabelsToRegionsd(Transform):
    """Dictionary transform: ``label`` -> one mask per region, in the card's channel order (sigmoid cards)."""

    def __init__(self, regions: Sequence[tuple[int, ...]]) -> None:
        self.regions = [tuple(r) for r in regions]

    def __call__(self, data: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(data)
        out["label"] = region_targets(data["label"], self.regions)
        return out


def build_train_transforms(
    card: ModelCard, settings: Mapping[str, Any], regions: Sequence[tuple[int, ...]] | None
) -> tuple[Any, Any]:
    """``(deterministic chain, random chain)`` for training cases.

    Args:
        card: the model card being trained (preprocessing, ROI, slice axis).
        settings: the pipeline's settings (sections ``data`` and ``augmentation``).
        regions: label sets per output channel for sigmoid cards, else ``None``.
    """
    from monai.transforms import (
        Compose,
        CropForegroundd,
        EnsureTyped,
        RandCropByPosNegLabeld,
        RandFlipd,
        RandRotate90d,
        RandRotated,
        RandScaleIntensityd,
        RandShiftIntensityd,
        RandSpatialCropd,
        SpatialPadd,
        SqueezeDimd,
    )

    keys = ["image", "label"]
    data, aug = settings["data"], settings["augmentation"]
    crop = aug["crop"]
    roi = training_roi(card, crop["roi_size"])
    deterministic: list[Any] = [
        LoadCased(card, data["label_remap"]),
        CardPreprocessd(card),
        EnsureTyped(keys, track_meta=False),
    ]
    if data["crop_foreground"]:
        deterministic.append(CropForegroundd(keys, source_key="image", allow_smaller=True))
    deterministic.append(SpatialPadd(keys, spatial_size=roi))

    random: list[Any] = []
    if crop["type"] == "pos_neg":
        random.append(
            RandCropByPosNegLabeld(
                keys,
                label_key="label",
                spatial_size=roi,
                pos=crop["pos"],
                neg=crop["neg"],
                num_samples=crop["num_samples"],
                image_key="image",
                image_threshold=0,
            )
        )
    else:
        from monai.transforms import RandSpatialCropSamplesd

        if crop["num_samples"] > 1:
            random.append(
                RandSpatialCropSamplesd(
                    keys, roi_size=roi, num_samples=crop["num_samples"], random_size=False
                )
            )
        else:
            random.append(RandSpatialCropd(keys, roi_size=roi, random_size=False))
    dims = card.spatial_dims
    if image_spatial_dims(card) != dims:  # a 2D model trained on slices of volumes
        random.append(SqueezeDimd(keys, dim=1 + int(card.slice_axis)))
    flip = aug["flip"]
    if flip["prob"] > 0:
        for axis in flip["axes"]:
            if axis >= dims:
                raise ManifestError(f"augmentation.flip.axes has axis {axis} but the model is {dims}D")
            random.append(RandFlipd(keys, prob=flip["prob"], spatial_axis=axis))
    if aug["rotate90"]["prob"] > 0:
        random.append(RandRotate90d(keys, prob=aug["rotate90"]["prob"], max_k=aug["rotate90"]["max_k"]))
    if aug["rotate"]["prob"] > 0:
        angle = float(np.deg2rad(aug["rotate"]["range_deg"]))
        random.append(
            RandRotated(
                keys,
                range_x=angle,  # in the plane of the first two axes: in-plane for 2D and RAS volumes
                prob=aug["rotate"]["prob"],
                mode=("bilinear", "nearest"),
                padding_mode="zeros",
                keep_size=True,
            )
        )
    if aug["scale_intensity"]["prob"] > 0:
        random.append(
            RandScaleIntensityd(
                "image", factors=aug["scale_intensity"]["factor"], prob=aug["scale_intensity"]["prob"]
            )
        )
    if aug["shift_intensity"]["prob"] > 0:
        random.append(
            RandShiftIntensityd(
                "image", offsets=aug["shift_intensity"]["offset"], prob=aug["shift_intensity"]["prob"]
            )
        )
    if regions is not None:
        random.append(LabelsToRegionsd(regions))
    random.append(EnsureTyped(keys, track_meta=False))
    return Compose(deterministic), Compose(random)
