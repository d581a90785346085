"""What a finished case leaves in the output folder, and how a later run knows it is finished.

Per case ``<id>``:

* the label map: ``<id>.nii.gz`` (``nifti``), ``<id>.mha`` (``mha``) and/or ``<id>.dcm``
  (``dicom-seg``, for DICOM inputs), each written atomically on the input's exact grid;
* ``<id>_probabilities.nii.gz`` with ``save_probabilities`` (float32, one channel per class or region);
* ``<id>_preview.png`` with ``preview``: three orthogonal slices through the labelled region;
* ``<id>.json``, written last: label volumes (mL), voxel counts, timings, the model card's id, and
  the size and SHA-256 of every file above. It is the finished marker: a case counts as done only
  when its record parses, names the same model and formats, and every file it lists still has that
  size and checksum (:func:`finished_record`).

Before a case writes anything, an empty ``.<id>.running`` file says that the run owns that case's
files; it is removed with the record. A later run therefore tells its own interrupted outputs
(replaced) from files someone else put there (kept unless ``overwrite``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medswin.errors import ImageWriteError
from medswin.io.formats import OUTPUT_FORMATS
from medswin.io.image import Image

__all__ = [
    "OUTPUT_FORMATS",
    "label_outputs",
    "record_path",
    "probabilities_path",
    "preview_path",
    "case_files",
    "running_marker",
    "finished_record",
    "label_volumes",
    "write_case_outputs",
    "write_preview",
]

log = logging.getLogger(__name__)


def label_outputs(output_dir: Path, case_id: str, formats: Sequence[str]) -> dict[str, Path]:
    """Format -> label file path of one case."""
    return {fmt: output_dir / f"{case_id}{OUTPUT_FORMATS[fmt]}" for fmt in formats}


def record_path(output_dir: Path, case_id: str) -> Path:
    return output_dir / f"{case_id}.json"


def probabilities_path(output_dir: Path, case_id: str) -> Path:
    return output_dir / f"{case_id}_probabilities.nii.gz"


def preview_path(output_dir: Path, case_id: str) -> Path:
    return output_dir / f"{case_id}_preview.png"


def case_files(output_dir: Path, case_id: str, formats: Sequence[str]) -> list[Path]:
    """Every file a run in ``formats`` may write for the case (labels, probabilities, preview, record)."""
    return [
        *label_outputs(output_dir, case_id, formats).values(),
        probabilities_path(output_dir, case_id),
        preview_path(output_dir, case_id),
        record_path(output_dir, case_id),
    ]


def running_marker(output_dir: Path, case_id: str) -> Path:
    return output_dir / f".{case_id}.running"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def finished_record(output_dir: Path, case_id: str, model_id: str, formats: Sequence[str]) -> dict | None:
    """The case's record when its outputs are complete and were made by ``model_id`` in ``formats``, else None."""
    path = record_path(output_dir, case_id)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("status") != "done":
        return None
    files = record.get("files")
    if record.get("model") != model_id or not isinstance(files, dict):
        return None
    if not set(label_outputs(output_dir, case_id, formats)) <= set(record.get("formats", [])):
        return None
    for name, facts in files.items():
        target = output_dir / name
        try:
            if target.stat().st_size != facts["bytes"] or _sha256(target) != facts["sha256"]:
                return None
        except (OSError, KeyError, TypeError):
            return None
    return record


def label_volumes(labels: Image, names: Mapping[int, str]) -> dict[str, dict[str, Any]]:
    """Label name -> ``{"value", "voxels", "volume_ml"}`` for every non-zero label of the card (0 when absent)."""
    from medswin.metrics import voxel_volume_ml

    array = np.asarray(labels.array[0])
    counts = np.bincount(array.ravel(), minlength=max(names, default=0) + 1)
    unit = voxel_volume_ml(labels.spacing)
    return {
        names[value]: {"value": value, "voxels": int(counts[value]), "volume_ml": float(counts[value] * unit)}
        for value in sorted(names)
        if value != 0
    }


def _display_slices(labels: np.ndarray, volume: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Three orthogonal (image, labels) planes through the centre of the labelled region (or the middle)."""
    present = np.argwhere(labels > 0)
    centre = present.mean(axis=0).round().astype(int) if len(present) else np.array(labels.shape) // 2
    planes = []
    for axis in (2, 1, 0):  # axial, coronal, sagittal planes of an LAS array
        index = [slice(None)] * 3
        index[axis] = int(centre[axis])
        planes.append((volume[tuple(index)], labels[tuple(index)]))
    return planes


def write_preview(
    image: Image,
    labels: Image,
    path: Path,
    colors: Mapping[int, Sequence[int]],
    title: str,
    window: tuple[float, float] | None = None,
) -> Path:
    """A PNG of axial, coronal and sagittal slices with the labels overlaid, at true aspect ratio.

    ``window``: grey-level range (e.g. the model card's HU window); default the 1st-99th percentile.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    from medswin.io.geometry import reorient
    from medswin.io.writers import atomic_output

    if image.spatial_dims != 3:
        raise ImageWriteError(f"{path}: previews are drawn for 3D images only")
    # LAS arrays drawn with the first axis across: the patient's right on the viewer's left
    # (radiological convention), anterior and superior up.
    shown = reorient(image.with_array(image.array[:1]), "LAS")
    shown_labels = reorient(labels, "LAS")
    volume = np.asarray(shown.array[0], dtype=np.float32)
    low, high = window if window is not None else np.percentile(volume, (1, 99))
    lut = np.zeros((int(max(colors, default=0)) + 1, 4))
    for value, rgb in colors.items():
        lut[int(value)] = (*(c / 255 for c in rgb), 0.45)
    sx, sy, sz = shown.spacing
    aspects = (sy / sx, sz / sx, sz / sy)  # rows vs columns of each plane after transposing
    figure = Figure(figsize=(12, 4.4), dpi=100)
    for column, ((plane, plane_labels), aspect, name) in enumerate(
        zip(
            _display_slices(np.asarray(shown_labels.array[0]), volume),
            aspects,
            ("axial", "coronal", "sagittal"),
        )
    ):
        axes = figure.add_subplot(1, 3, column + 1)
        axes.imshow(plane.T, cmap="gray", vmin=low, vmax=high, origin="lower", aspect=aspect)
        overlay = lut[np.clip(plane_labels, 0, len(lut) - 1)]
        axes.imshow(np.transpose(overlay, (1, 0, 2)), origin="lower", aspect=aspect, interpolation="nearest")
        axes.set_title(name)
        axes.set_axis_off()
    figure.suptitle(title)
    figure.tight_layout()
    with atomic_output(path) as temporary:
        figure.savefig(temporary, format="png")
    return path


def write_case_outputs(
    case_id: str,
    image: Image,
    prediction: Any,
    output_dir: Path,
    formats: Sequence[str],
    *,
    preview: bool = False,
) -> dict[str, Any]:
    """Write one case's files (see the module docstring), the record last; returns the record.

    Raises :class:`ImageWriteError` naming the file; files already written for the case stay
    owned by the ``running`` marker, so the next run replaces them.
    """
    from medswin import __version__
    from medswin.io import write_image, write_labels
    from medswin.io.dicom_seg import write_dicom_seg
    from medswin.metrics.report import write_atomic

    card = prediction.card
    written: list[Path] = []
    for fmt, target in label_outputs(output_dir, case_id, formats).items():
        if fmt == "dicom-seg":
            if not image.meta.get("source_files") or image.meta.get("format") != "dicom":
                raise ImageWriteError(
                    f"{target}: DICOM-SEG needs a DICOM input, and {image.meta.get('path', case_id)} is "
                    f"{image.meta.get('format', 'not DICOM')}; choose --output-format nifti or mha"
                )
            names = {v: n for v, n in card.labels.items() if v != 0}
            colors = {v: tuple(c) for v, c in card.colors.items()} if card.colors else None
            write_dicom_seg(prediction.labels, image, target, names, colors, algorithm_name=card.id)
        else:
            write_labels(prediction.labels, target, reference=image)
        written.append(target)
    if prediction.probabilities is not None:
        written.append(
            write_image(
                prediction.probabilities,
                probabilities_path(output_dir, case_id),
                reference=image,
                dtype=np.float32,
            )
        )
    if preview:
        colors = card.colors or {v: (255, 64, 64) for v in card.labels if v}
        intensity = card.intensity
        window = (intensity["a_min"], intensity["a_max"]) if intensity.get("type") == "window" else None
        target = preview_path(output_dir, case_id)
        written.append(
            write_preview(image, prediction.labels, target, colors, f"{case_id}: {card.id}", window)
        )
    record = {
        "case": case_id,
        "status": "done",
        "model": card.id,
        "medswin": __version__,
        "formats": list(formats),
        "inputs": [Path(p).name for p in image.meta.get("inputs", [image.meta.get("path", "")])],
        "shape": list(prediction.labels.shape),
        "spacing_mm": [float(s) for s in prediction.labels.spacing],
        "labels": label_volumes(prediction.labels, card.labels),
        "timings_s": {k: round(float(v), 4) for k, v in prediction.timings.items()},
        "windows": int(prediction.windows),
        "files": {p.name: {"bytes": p.stat().st_size, "sha256": _sha256(p)} for p in written},
    }
    write_atomic(record_path(output_dir, case_id), json.dumps(record, indent=2) + "\n")
    log.debug("wrote %s", ", ".join(p.name for p in written))
    return record
