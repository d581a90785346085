"""What a finished case leaves in the output folder, how a later run knows it is finished, and what medswin owns.

Per case ``<id>``:

* the label outputs, one or more formats of the writer registry (:data:`medswin.io.outputs.WRITERS`):
  ``<id>.nii.gz`` (``nifti``), ``<id>.mha`` (``mha``), ``<id>.dcm`` (``dicom-seg``) and
  ``<id>.rtstruct.dcm`` (``rtstruct``) for DICOM inputs, ``<id>_mesh_<label>.stl`` (``mesh``, one per
  label present), each written atomically on the input's exact grid (a radiograph pair's on the
  model's grid);
* ``<id>_probabilities.nii.gz`` with ``save_probabilities`` (float32, one channel per class or region);
* ``<id>_preview.png`` with ``preview``: three orthogonal slices through the labelled region;
* ``<id>.json``, written last: label volumes (mL), voxel counts, timings, the model card's id, the
  quality verdict and its checks (``qc``, :mod:`medswin.qc`), the settings that change the output
  (:func:`prediction_settings`), the files of each output (``outputs``: format -> names) and the
  size and SHA-256 of every file above. It is the finished marker: a case counts as done only when its record parses and
  every file it lists still has that size and checksum (:func:`intact_record`).

**Ownership**, one rule for every per-case file: medswin replaces or deletes a file only when it
owns it (:func:`owned_files`): the case's record itself, the files the record lists while their
checksums still match, and the files named in the case's ``.<id>.running`` marker. That marker is
written before a case writes anything and lists the files the run is about to write (each was absent
or owned when the run claimed the case); it is removed when the record is written. Everything
else (a user's ``<id>.json``, an edited label map, probabilities from elsewhere) is kept, and a
case that would need to write over it fails unless ``overwrite``.

**One failed output** (e.g. DICOM-SEG refused for a source highdicom cannot reference) does not take
the others with it: the files that were written are recorded, the record lists the failure under
``failed_outputs``, the case is reported failed, and a rerun writes only what is still missing.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medswin.errors import ImageWriteError, MedSwinError
from medswin.io.image import Image
from medswin.io.outputs import WRITERS, LabelSet

if TYPE_CHECKING:
    from medswin.inference.contract import PredictorLike

__all__ = [
    "EXTRA_OUTPUTS",
    "planned_files",
    "recorded_outputs",
    "record_path",
    "probabilities_path",
    "preview_path",
    "running_marker",
    "read_record",
    "changed_files",
    "intact_record",
    "finished_record",
    "owned_files",
    "mark_running",
    "marked_names",
    "prediction_settings",
    "setting_changes",
    "label_volumes",
    "write_case_outputs",
    "write_preview",
    "seg_descriptions",
    "label_set",
    "IncompleteOutputsError",
]

log = logging.getLogger(__name__)

#: outputs besides the label maps -> file name ending after ``<id>``.
EXTRA_OUTPUTS: dict[str, str] = {"probabilities": "_probabilities.nii.gz", "preview": "_preview.png"}


def planned_files(
    output_dir: Path, case_id: str, kinds: Sequence[str], names: Mapping[int, str]
) -> dict[str, list[Path]]:
    """Output kind (a writer's name, ``probabilities`` or ``preview``) -> every file it may write for
    the case (a per-label writer: one per label of ``names``, the model card's)."""
    return {
        kind: (
            list(WRITERS[kind].targets(output_dir, case_id, names).values())
            if kind in WRITERS
            else [output_dir / f"{case_id}{EXTRA_OUTPUTS[kind]}"]
        )
        for kind in kinds
    }


def recorded_outputs(record: Mapping[str, Any]) -> dict[str, list[str]]:
    """Output kind -> file names of a record: its ``outputs``, or for a record made before they were
    listed, every one-file kind whose file it lists. A kind counts only while all its files are listed."""
    files = record.get("files") or {}
    listed = record.get("outputs")
    if isinstance(listed, dict):
        return {
            kind: list(names)
            for kind, names in listed.items()
            if isinstance(names, list) and all(name in files for name in names)
        }
    case_id = str(record.get("case", ""))
    one_file = {name: w.files(case_id, {})[0] for name, w in WRITERS.items() if not w.per_label}
    one_file.update({kind: f"{case_id}{ending}" for kind, ending in EXTRA_OUTPUTS.items()})
    return {kind: [name] for kind, name in one_file.items() if name in files}


def record_path(output_dir: Path, case_id: str) -> Path:
    return output_dir / f"{case_id}.json"


def probabilities_path(output_dir: Path, case_id: str) -> Path:
    return output_dir / f"{case_id}{EXTRA_OUTPUTS['probabilities']}"


def preview_path(output_dir: Path, case_id: str) -> Path:
    return output_dir / f"{case_id}{EXTRA_OUTPUTS['preview']}"


def running_marker(output_dir: Path, case_id: str) -> Path:
    return output_dir / f".{case_id}.running"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _own_name(name: Any, case_id: str) -> bool:
    """A file name a record or marker of ``case_id`` may list: a plain name in the folder, of that case."""
    return isinstance(name, str) and Path(name).name == name and name.startswith(case_id)


def read_record(output_dir: Path, case_id: str) -> dict | None:
    """The case's record when ``<id>.json`` is one that medswin wrote for this case (else None).

    A JSON file someone else put there (a BIDS sidecar, notes) does not name the case, the model
    and its files the way a record does, and is not medswin's.
    """
    try:
        record = json.loads(record_path(output_dir, case_id).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("case") != case_id or record.get("status") != "done":
        return None
    files = record.get("files")
    if not isinstance(files, dict) or not all(_own_name(name, case_id) for name in files):
        return None
    if not isinstance(record.get("model"), str):
        return None
    return record


def changed_files(output_dir: Path, record: Mapping[str, Any]) -> list[str]:
    """Names of the files ``record`` lists that are gone or no longer have its size and SHA-256."""
    changed = []
    for name, facts in record["files"].items():
        target = output_dir / name
        try:
            if target.stat().st_size != facts["bytes"] or _sha256(target) != facts["sha256"]:
                changed.append(name)
        except (OSError, KeyError, TypeError):
            changed.append(name)
    return changed


def intact_record(output_dir: Path, case_id: str) -> dict | None:
    """The case's record when every file it lists is unchanged, else None."""
    record = read_record(output_dir, case_id)
    if record is None or changed_files(output_dir, record):
        return None
    return record


def finished_record(output_dir: Path, case_id: str, model_id: str, formats: Sequence[str]) -> dict | None:
    """The case's record when its outputs are complete and were made by ``model_id`` in ``formats``, else None."""
    record = intact_record(output_dir, case_id)
    if record is None or record.get("model") != model_id:
        return None
    return record if set(formats) <= set(recorded_outputs(record)) else None


def marked_names(output_dir: Path, case_id: str) -> list[str]:
    """The file names the case's running marker lists (none when it is missing or unreadable)."""
    try:
        names = json.loads(running_marker(output_dir, case_id).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [n for n in names if _own_name(n, case_id)] if isinstance(names, list) else []


def owned_files(
    output_dir: Path, case_id: str, record: Mapping[str, Any] | None, changed: Sequence[str] = ()
) -> set[Path]:
    """The case's files medswin may replace or delete (see the module docstring).

    Args:
        record: the case's record (:func:`read_record`), or None.
        changed: the record's files that no longer match it (:func:`changed_files`); not owned.

    Files a running marker names are included even when absent: an interrupted writer may have left
    its temporaries (``.<name>.*.partial``) beside them.
    """
    owned = {output_dir / name for name in marked_names(output_dir, case_id)}
    if record is not None:
        owned |= {output_dir / name for name in record["files"] if name not in changed}
        owned.add(record_path(output_dir, case_id))
    return owned


def mark_running(output_dir: Path, case_id: str, targets: Sequence[Path]) -> None:
    """Write the case's ``.running`` marker naming the files the run is about to write."""
    running_marker(output_dir, case_id).write_text(json.dumps([p.name for p in targets]), encoding="utf-8")


def prediction_settings(predictor: PredictorLike) -> dict[str, Any]:
    """The settings of ``predictor`` that change what it writes (model, precision, overlap, TTA,
    window blending, runtime, post-processing), as JSON values, for the case record."""
    post = predictor.postprocess
    settings = {
        "model": predictor.card.id,
        "precision": predictor.precision,
        "overlap": predictor.overlap,
        "tta": predictor.tta,
        "mode": predictor.mode,
        # recorded only when it is not the default, so older records need no redo
        # what ran the windows (runtimes differ at near-ties); ``auto`` chooses per machine, so it is
        # recorded only when a runtime was asked for (records of auto and of older runs then agree)
        **({"runtime": predictor.runtime} if predictor.runtime != "auto" else {}),
        **({"resample": predictor.card.resample} if predictor.card.resample != "labels" else {}),
        "labels_subset": None if post is None else post.keep_labels,
        "keep_largest": None if post is None else post.keep_largest,
        "min_size_mm3": None if post is None else post.min_size_mm3,
        "remap": {str(k): v for k, v in sorted((post.remap if post is not None else {}).items())},
        **predictor.input_settings,  # how a predictor reads its inputs (X-ray views)
    }
    return json.loads(json.dumps(settings))  # tuples -> lists, as a record read back holds them


def setting_changes(recorded: Any, settings: Mapping[str, Any]) -> list[str]:
    """What differs between a record's settings and ``settings``, as ``name recorded -> now`` texts.

    A setting absent on one side counts as ``None``, so one recorded only when on (``deidentify``)
    needs no redo of older records and is noticed when it is turned off again.
    """
    if not isinstance(recorded, dict):
        return ["settings not recorded"]
    names = [*settings, *(name for name in recorded if name not in settings)]
    return [
        f"{name} {recorded.get(name)!r} -> {settings.get(name)!r}"
        for name in names
        if recorded.get(name) != settings.get(name)
    ]


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
    """Three orthogonal (image, labels) planes of LAS arrays through the centre of the labelled region.

    Each plane is indexed ``[column, row]`` as drawn (``imshow(plane.T, origin="lower")``: first
    index left to right, second bottom to top): axial (R..L across, P..A up), coronal (R..L across,
    I..S up), sagittal (A..P across, I..S up: anterior on the left, as radiology shows it).
    """
    present = np.argwhere(labels > 0)
    centre = present.mean(axis=0).round().astype(int) if len(present) else np.array(labels.shape) // 2
    planes = []
    for axis in (2, 1, 0):  # axial, coronal, sagittal planes of an LAS array
        index = [slice(None)] * 3
        index[axis] = int(centre[axis])
        plane, plane_labels = volume[tuple(index)], labels[tuple(index)]
        if axis == 0:  # the array's Y runs towards anterior: reversed, anterior comes first (left)
            plane, plane_labels = plane[::-1], plane_labels[::-1]
        planes.append((plane, plane_labels))
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

    from medswin.files import atomic_output
    from medswin.io.geometry import reorient

    if image.spatial_dims != 3:
        raise ImageWriteError(f"{path}: previews are drawn for 3D images only")
    # LAS arrays drawn with the first axis across: the patient's right on the viewer's left
    # (radiological convention), anterior and superior up; sagittal with anterior on the left.
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


def _volume(source: Any) -> Image | None:
    """The input image outputs are written onto, or None for a source without a volume grid (a
    radiograph pair: its outputs stay on the model's grid)."""
    return source if isinstance(source, Image) else None


def label_set(image: Any, prediction: Any, deidentify_key: bytes | None = None) -> LabelSet:
    """What the writers get for a prediction: its labels on the input, the card's names and colours,
    and for DICOM outputs the model, the descriptions a PACS viewer shows and the de-identification key."""
    card = prediction.card
    series, content = seg_descriptions(card, _quality(prediction))
    return LabelSet(
        labels=prediction.labels,
        source=_volume(image),
        names={v: n for v, n in card.labels.items() if v != 0},
        colors={v: tuple(c) for v, c in card.colors.items()} if card.colors else None,
        algorithm=card.id,
        series_description=series,
        content_description=content,
        deidentify_key=deidentify_key,
    )


def seg_descriptions(card: Any, quality: Any) -> tuple[str, str]:
    """``(SeriesDescription, ContentDescription)`` of a DICOM-SEG, each at most 64 characters, so a
    PACS viewer shows what the series is for and how far to trust it: ``"medswin demo QC warn"`` and
    ``"research use only ...; QC warn: <first reason>"``."""
    from medswin.models.card import DEFAULT_INTENDED_USE

    use = (card.intended_use or DEFAULT_INTENDED_USE).split(":")[0].strip()
    verdict = quality.verdict if quality.checks else "not checked"
    series = f"medswin {card.id}"[: 64 - len(f" QC {verdict}")] + f" QC {verdict}"
    content = f"{use}; QC {verdict}" + (f": {quality.reason}" if quality.reason else "")
    return series, content[:64]


def _write_output(
    kind: str, targets: list[Path], image: Any, prediction: Any, case_id: str, labels: LabelSet
) -> list[Path]:
    """The files of output kind ``kind`` (a writer's name, ``probabilities`` or ``preview``)."""
    from medswin.io import write_image

    card = prediction.card
    if kind in WRITERS:
        return WRITERS[kind].write(labels, targets[0].parent, case_id)
    (target,) = targets
    if kind == "probabilities":
        if prediction.probabilities is None:
            raise ImageWriteError(f"{target}: the predictor was not asked to keep probabilities")
        return [write_image(prediction.probabilities, target, reference=_volume(image), dtype=np.float32)]
    if _volume(image) is None:
        raise ImageWriteError(f"{target}: a preview shows the input volume, and this case has none")
    colors = card.colors or {v: (255, 64, 64) for v in card.labels if v}
    intensity = card.intensity
    window = (intensity["a_min"], intensity["a_max"]) if intensity.get("type") == "window" else None
    return [write_preview(image, prediction.labels, target, colors, f"{case_id}: {card.id}", window)]


def _quality(prediction: Any) -> Any:
    """The prediction's quality report (:mod:`medswin.qc`); an empty one for predictors without checks."""
    from medswin.qc.core import QualityReport

    quality = getattr(prediction, "quality", None)
    return quality if isinstance(quality, QualityReport) else QualityReport()


class IncompleteOutputsError(ImageWriteError):
    """Some of a case's outputs failed; the others are written and listed in ``record``."""

    def __init__(self, message: str, record: dict[str, Any]) -> None:
        super().__init__(message)
        self.record = record


def write_case_outputs(
    case_id: str,
    image: Any,
    prediction: Any,
    output_dir: Path,
    kinds: Sequence[str],
    *,
    settings: Mapping[str, Any] | None = None,
    earlier: Mapping[str, Any] | None = None,
    deidentify_key: bytes | None = None,
    hide: Callable[[str], str] | None = None,
) -> dict[str, Any]:
    """Write one case's files (see the module docstring), the record last; returns the record.

    Args:
        image: the case's input: an :class:`Image`, whose grid the outputs take, or a source
            without a volume grid (a :class:`~medswin.batch.biplanar.RadiographPair`), whose
            outputs stay on the prediction's grid.
        kinds: outputs to write now: writer names (:data:`~medswin.io.outputs.WRITERS`),
            ``probabilities``, ``preview``.
        settings: :func:`prediction_settings` of the run, stored in the record.
        earlier: an intact record of the same settings whose files stay and are listed again (a rerun
            that adds outputs, e.g. another format, to a finished case).
        deidentify_key: write DICOM outputs de-identified, pseudonyms under this key (the folder's).
        hide: applied to a failed output's reason before the record and the error hold it (takes the
            input's paths and source UIDs out when case names hide their source).

    Raises :class:`ImageWriteError` naming the file when nothing could be written (files left
    behind stay owned by the ``running`` marker, so the next run replaces them), and
    :class:`IncompleteOutputsError` after writing the record when only some outputs failed.
    """
    from medswin import __version__
    from medswin.files import write_atomic

    card = prediction.card
    labels = label_set(image, prediction, deidentify_key)
    outputs = recorded_outputs(earlier) if earlier else {}
    written: list[Path] = []
    failures: dict[str, MedSwinError] = {}
    for kind, targets in planned_files(output_dir, case_id, kinds, card.labels).items():
        try:
            made = _write_output(kind, targets, image, prediction, case_id, labels)
        except MedSwinError as error:
            log.debug("case output %s failed: %s", kind, error)
            failures[kind] = error
            continue
        written += made
        outputs[kind] = [p.name for p in made]
    if failures and not outputs:
        raise next(iter(failures.values()))
    files = dict(earlier["files"]) if earlier else {}
    files.update({p.name: {"bytes": p.stat().st_size, "sha256": _sha256(p)} for p in written})
    formats = [name for name in WRITERS if name in outputs]
    record = {
        "case": case_id,
        "status": "done",
        "model": card.id,
        "medswin": __version__,
        "formats": formats,
        "settings": dict(settings or {}),
        "inputs": [Path(p).name for p in image.meta.get("inputs", [image.meta.get("path", "")])],
        "shape": list(prediction.labels.shape),
        "spacing_mm": [float(s) for s in prediction.labels.spacing],
        "labels": label_volumes(prediction.labels, card.labels),
        "timings_s": {k: round(float(v), 4) for k, v in prediction.timings.items()},
        "windows": int(prediction.windows),
        "runtime": getattr(prediction, "runtime", None),
        "qc": _quality(prediction).to_dict(),
        "outputs": outputs,
        "files": files,
    }
    hidden = hide or str
    if failures:
        record["failed_outputs"] = {kind: hidden(str(error)) for kind, error in failures.items()}
    write_atomic(record_path(output_dir, case_id), json.dumps(record, indent=2) + "\n")
    log.debug("wrote %s", ", ".join(p.name for p in written))
    if failures:
        kind, error = next(iter(failures.items()))
        raise IncompleteOutputsError(
            f"{kind} not written ({hidden(str(error))}); the other outputs are kept", record
        )
    return record
