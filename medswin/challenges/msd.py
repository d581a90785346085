"""Medical Segmentation Decathlon submissions, from the Decathlon or the nnU-Net layout.

A task folder holds ``dataset.json`` and ``imagesTs/``. Decathlon (v1) ``dataset.json`` names the
channels in ``modality`` and the labels value -> name; multi-modal cases are 4D NIfTI files.
nnU-Net (v2) names them in ``channel_names`` and labels name -> value, with one file per channel
(``<case>_0000.nii.gz`` ...). The model card's channels must be the task's, in the same order
(names compared case-insensitively), and its label values must be the task's.

Predictions are ``<case>.nii.gz`` on each test image's grid; ``<TaskName>.zip`` holds them in a
folder named after the task. The validator checks every test case is there once, nothing else
is, label values are the task's and the grid is the image's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medswin.batch.cases import Case, discover_cases
from medswin.challenges.validation import (
    ValidationReport,
    check_label_image,
    read_submitted_labels,
    submission_folder,
    write_submission_zip,
)
from medswin.errors import MedSwinError, ModelCardError
from medswin.io.formats import case_name
from medswin.models.card import ModelCard

__all__ = ["MsdTask", "read_task", "msd_cases", "check_card", "pack_submission", "validate_msd"]

#: integer voxel types a Decathlon label file may use.
_LABEL_DTYPES = (np.uint8, np.int8, np.uint16, np.int16, np.int32)


@dataclass(frozen=True)
class MsdTask:
    """What ``dataset.json`` declares.

    Attributes:
        folder: the task folder.
        name: task name (``Task01_BrainTumour``; the folder name when the JSON has none).
        channels: channel names in order.
        labels: label value -> name (0 included).
        test: test case ids, in the JSON's order (or every case in ``imagesTs/``).
    """

    folder: Path
    name: str
    channels: tuple[str, ...]
    labels: dict[int, str]
    test: tuple[str, ...]

    @property
    def images(self) -> Path:
        return self.folder / "imagesTs"


def read_task(folder: str | Path) -> MsdTask:
    """Read and check a task folder's ``dataset.json`` (Decathlon v1 or nnU-Net v2)."""
    folder = Path(folder)
    path = folder / "dataset.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise MedSwinError(f"{path}: cannot read the task's dataset.json ({error.strerror})") from error
    except ValueError as error:
        raise MedSwinError(f"{path}: not valid JSON ({error})") from error
    channels_map = data.get("modality") or data.get("channel_names")
    raw_labels = data.get("labels")
    if not isinstance(channels_map, dict) or not isinstance(raw_labels, dict):
        raise MedSwinError(f"{path}: needs 'modality' (or 'channel_names') and 'labels' objects")
    channels = tuple(str(channels_map[k]) for k in sorted(channels_map, key=int))
    if all(str(k).isdigit() for k in raw_labels):  # Decathlon: value -> name
        labels = {int(k): str(v) for k, v in raw_labels.items()}
    else:  # nnU-Net v2: name -> value (regions as lists are training-only)
        labels = {int(v): str(k) for k, v in raw_labels.items() if isinstance(v, int)}
    if "test" in data:
        test = tuple(case_name(Path(str(entry)).name) for entry in data["test"])
    else:
        test = tuple(c.case_id for c in discover_cases([folder / "imagesTs"]))
    return MsdTask(folder, str(data.get("name") or folder.name), channels, labels, test)


def check_card(card: ModelCard, task: MsdTask) -> None:
    """Refuse a model whose channels or labels are not the task's."""
    ours = [c.lower() for c in card.channels]
    theirs = [c.lower() for c in task.channels]
    if ours != theirs:
        raise ModelCardError(
            f"model {card.id!r} takes channels {', '.join(card.channels)} but {task.name} declares "
            f"{', '.join(task.channels)}; the order must match"
        )
    unknown = sorted(set(card.labels) - set(task.labels))
    if unknown:
        raise ModelCardError(f"model {card.id!r} writes label(s) {unknown} that {task.name} does not declare")


def msd_cases(task: MsdTask) -> list[Case]:
    """The task's test cases, from 4D files or nnU-Net channel files; a listed case with no file is kept
    (with the file it should have) so the batch reports it."""
    if not task.images.is_dir():
        raise MedSwinError(f"{task.images}: no imagesTs folder in the task")
    found = {c.case_id: c for c in discover_cases([task.images])}
    return [found.get(case, Case(case, (task.images / f"{case}.nii.gz",))) for case in task.test]


def pack_submission(predictions: Path, task: MsdTask, case_ids: Sequence[str], target: Path) -> Path:
    """Zip ``<task name>/<case>.nii.gz`` of ``case_ids`` into ``target`` (atomically)."""
    members = {f"{task.name}/{c}.nii.gz": predictions / f"{c}.nii.gz" for c in case_ids}
    return write_submission_zip(target, members)


def validate_msd(submission: str | Path, task: MsdTask) -> ValidationReport:
    """Check predictions (folder or zip; files at the top or in one ``<task name>/`` folder) against the task."""
    from medswin.io import read_image

    report = ValidationReport(f"MSD {task.name}")
    images = {c.case_id: c for c in msd_cases(task)}
    with submission_folder(submission) as (folder, names):
        seen: set[str] = set()
        for name in names:
            parts = Path(name).parts
            if len(parts) > 2 or (len(parts) == 2 and parts[0] != task.name):
                report.add(name, f"unexpected folder; put predictions at the top or in {task.name}/")
                continue
            if not name.endswith(".nii.gz"):
                report.add(name, "not a prediction (.nii.gz)")
                continue
            case = case_name(name)
            if case not in images:
                report.add(case, f"not a test case of {task.name}")
                continue
            if case in seen:
                report.add(case, "predicted twice")
                continue
            seen.add(case)
            report.checked.append(case)
            loaded = read_submitted_labels(report, case, folder / name)
            if loaded is None:
                continue
            labels, stored = loaded
            try:
                reference = read_image(images[case].paths[0])
            except MedSwinError as error:
                report.add(case, f"its test image cannot be read ({error})")
                reference = None
            check_label_image(
                report,
                case,
                labels,
                task.labels,
                stored_dtype=stored,
                reference=reference,
                dtypes=_LABEL_DTYPES,
            )
        for case in sorted(set(images) - seen):
            report.add(case, "missing: a test case has no prediction")
    return report
