"""Save a labels layer on its source geometry: NIfTI/NRRD/MHA, or any writer of the registry.

The layer is turned back into an :class:`~medswin.io.image.Image` on the file's own axis order
(:func:`napari_medswin._layers.layer_to_image`), so the written labels sit voxel for voxel on the
image they were predicted from; a NIfTI source's own sform/qform header is reused. Writing is
atomic (``medswin.io``): a failure leaves nothing behind.

Every writer of :data:`medswin.io.outputs.WRITERS` has an npe2 writer here, ``write_<name>``
(``write_rtstruct``, ``write_mesh``, ``write_dicom_seg``), made by :func:`registry_writer`; napari.yaml
names it with the file ending the writer uses. DICOM writers refuse a layer that was not made on a
DICOM series with :func:`medswin.io.outputs.dicom_source_problem`'s message, as ``medswin predict`` does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from medswin.io.outputs import WRITERS, LabelSet, OutputWriter
from medswin.io.writers import write_labels
from napari_medswin._layers import METADATA_KEY, layer_to_image

__all__ = ["write_labels_file", "registry_writer", "label_names_of", "seg_description"]


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


def _case_of(path: Path, writer: OutputWriter) -> str:
    """The case name the writer's files are named from: ``plan.rtstruct.dcm`` -> ``plan``,
    ``organs.stl`` -> ``organs`` (meshes ``organs_mesh_<label>.stl``)."""
    ending = writer.suffix.rsplit("}", 1)[-1]
    if path.name.lower().endswith(ending.lower()) and len(path.name) > len(ending):
        return path.name[: -len(ending)]
    return path.name.split(".", 1)[0] or path.name


def registry_writer(name: str) -> Callable[[str, Any, dict[str, Any]], list[str]]:
    """The npe2 writer of registry writer ``name``: a labels layer to its file(s) beside ``path``."""
    writer = WRITERS[name]

    def write(path: str, data: Any, attributes: dict[str, Any]) -> list[str]:
        labels = layer_to_image(data, attributes, kind="label")
        info = (attributes.get("metadata") or {}).get(METADATA_KEY) or {}
        colors = {int(k): tuple(int(c) for c in v) for k, v in (info.get("colors") or {}).items()}
        request = LabelSet(
            labels=labels,
            source=labels,  # same grid and the source series' metadata: DICOM outputs reference those files
            names=label_names_of(attributes),
            colors=colors or None,
            algorithm=str(info.get("model") or "medswin"),
            series_description=seg_description(info),
        )
        target = Path(path)
        return [str(p) for p in writer.write(request, target.parent, _case_of(target, writer))]

    write.__name__ = write.__qualname__ = f"write_{name.replace('-', '_')}"
    write.__doc__ = f"npe2 writer: a labels layer as {writer.title} (``{writer.suffix}``)."
    return write


for _name in WRITERS:
    globals()[f"write_{_name.replace('-', '_')}"] = registry_writer(_name)
write_labels_dicom_seg = registry_writer("dicom-seg")  # the name napari.yaml used before the registry
