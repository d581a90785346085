"""Save a labels layer on its source geometry: NIfTI/NRRD/MHA, or DICOM-SEG for DICOM studies.

The layer is turned back into an :class:`~medswin.io.image.Image` on the file's own axis order
(:func:`napari_medswin._layers.layer_to_image`), so the written labels sit voxel for voxel on the
image they were predicted from; a NIfTI source's own sform/qform header is reused. Writing is
atomic (``medswin.io``): a failure leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from medswin.errors import ImageWriteError
from medswin.io.dicom_seg import write_dicom_seg
from medswin.io.writers import write_labels
from napari_medswin._layers import METADATA_KEY, layer_to_image

__all__ = ["write_labels_file", "write_labels_dicom_seg", "label_names_of", "seg_description"]


def label_names_of(attributes: Mapping[str, Any]) -> dict[int, str]:
    """Label value -> name of a labels layer: its medswin metadata, else its ``features`` table."""
    info = (attributes.get("metadata") or {}).get(METADATA_KEY) or {}
    names = {int(k): str(v) for k, v in (info.get("label_names") or {}).items()}
    features = attributes.get("features")
    if features is not None and "index" in getattr(features, "columns", ()) and "name" in features.columns:
        for value, name in zip(features["index"], features["name"], strict=True):
            names.setdefault(int(value), str(name))
    names.pop(0, None)
    return names


def seg_description(info: Mapping[str, Any]) -> str:
    """The DICOM-SEG SeriesDescription: the model and its intended use (64 characters, DICOM's limit)."""
    model = str(info.get("model") or "")
    if not model:
        return "medswin segmentation (edited or drawn in napari)"[:64]
    use = str(info.get("intended_use") or "").split(":", 1)[0]
    return f"medswin {model}" + (f": {use}" if use else "")[: max(0, 64 - len(f"medswin {model}"))]


def write_labels_file(path: str, data: Any, attributes: dict[str, Any]) -> list[str]:
    """npe2 writer: a labels layer to ``.nii.gz``/``.nii``/``.nrrd``/``.mha`` on the source grid."""
    labels = layer_to_image(data, attributes, kind="label")
    return [str(write_labels(labels, path))]


def write_labels_dicom_seg(path: str, data: Any, attributes: dict[str, Any]) -> list[str]:
    """npe2 writer: a labels layer to a DICOM-SEG ``.dcm`` referencing the DICOM series it was made on."""
    labels = layer_to_image(data, attributes, kind="label")
    if labels.meta.get("format") != "dicom":
        raise ImageWriteError(
            f"{path}: DICOM-SEG needs labels made on an image opened from DICOM (folder, zip or file); "
            f"layer {attributes.get('name', '')!r} comes from {labels.meta.get('path') or 'no file'}. "
            "Save it as .nii.gz instead"
        )
    info = (attributes.get("metadata") or {}).get(METADATA_KEY) or {}
    colors = {int(k): tuple(int(c) for c in v) for k, v in (info.get("colors") or {}).items()}
    written = write_dicom_seg(
        labels,
        labels,  # same grid and the source series' metadata: the SEG references those files
        path,
        label_names_of(attributes),
        colors or None,
        algorithm_name=str(info.get("model") or "medswin"),
        series_description=seg_description(info),
    )
    return [str(written)]
