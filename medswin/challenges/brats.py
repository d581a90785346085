"""BraTS 2023/2024 submissions: case folders in, the portal's flat zip of label maps out.

Inputs per case: ``<case>-t1n.nii.gz``, ``-t1c``, ``-t2w``, ``-t2f`` (in a folder named ``<case>``,
as released, or all in one folder). The four files become the model's channels in its card's
order. The card's labels are mapped onto the edition's convention by name (NETC/NCR -> 1,
SNFH/ED -> 2, ET -> 3, RC -> 4), so a legacy ``4 = ET`` card writes ``3``. Predictions are
``<case>.nii.gz`` on the case's own grid (240x240x155, 1 mm, SRI-24; 182x218x182 for 2024
post-treatment glioma), uint8, packed flat into ``submission.zip``.

The validator mirrors the portal's checks: file names ending ``NNNNN-NNN.nii.gz``, no duplicate
ids, no other files, uint8, only the edition's labels, the expected shape (and, for 240x240x155,
the SRI-24 affine) or the input images' exact grid, and a prediction for every input case.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medswin.batch.cases import Case
from medswin.challenges.validation import (
    ValidationReport,
    check_label_image,
    read_submitted_labels,
    submission_folder,
    write_submission_zip,
)
from medswin.errors import MedSwinError, ModelCardError
from medswin.models.card import ModelCard

__all__ = [
    "BRATS_EDITIONS",
    "MODALITIES",
    "BratsEdition",
    "brats_cases",
    "brats_remap",
    "lesion_settings_for",
    "pack_submission",
    "validate_brats",
]

#: the four MRI sequences, as the file suffixes name them.
MODALITIES = ("t1n", "t1c", "t2w", "t2f")
#: older channel names of the same sequences (BraTS <= 2021, MSD).
_SYNONYMS = {"t1": "t1n", "t1ce": "t1c", "t1gd": "t1c", "t2": "t2w", "flair": "t2f", "t2-flair": "t2f"}
#: the portal's file-name rule.
SUBMISSION_NAME = re.compile(r"(\d{5}-\d{3})\.nii\.gz$")
#: RAS affine of the SRI-24 grid of BraTS 2023 (240x240x155, 1 mm).
SRI24_AFFINE = np.array([[-1.0, 0, 0, 0], [0, -1.0, 0, 239.0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]])
#: label-name prefixes -> BraTS 2023/2024 values.
_LABEL_BY_NAME = {"NETC": 1, "NCR": 1, "SNFH": 2, "ED": 2, "ET": 3, "RC": 4}


@dataclass(frozen=True)
class BratsEdition:
    """One edition's conventions.

    Attributes:
        labels: label value -> name of the submission.
        shapes: grids the portal accepts.
        lesion_settings: key of :data:`medswin.metrics.brats.LESION_WISE_SETTINGS` for local scoring.
    """

    name: str
    labels: dict[int, str]
    shapes: tuple[tuple[int, int, int], ...]
    lesion_settings: str

    @property
    def include_rc(self) -> bool:
        return 4 in self.labels


BRATS_EDITIONS: dict[str, BratsEdition] = {
    "brats2023": BratsEdition(
        "BraTS 2023", {1: "NETC", 2: "SNFH", 3: "ET"}, ((240, 240, 155),), "BraTS-GLI-2023"
    ),
    "brats2024": BratsEdition(
        "BraTS 2024",
        {1: "NETC", 2: "SNFH", 3: "ET", 4: "RC"},
        ((182, 218, 182), (240, 240, 155)),
        "BraTS-GLI-2024",
    ),
}


def _modality(channel: str) -> str:
    name = channel.strip().lower()
    name = _SYNONYMS.get(name, name)
    if name not in MODALITIES:
        raise ModelCardError(
            f"card channel {channel!r} is not a BraTS sequence; BraTS cards name their channels "
            f"{', '.join(MODALITIES)} (or t1, t1ce, t2, flair)"
        )
    return name


def brats_remap(card: ModelCard, edition: BratsEdition) -> dict[int, int]:
    """Card label value -> edition label value, matched by name; raises for labels the edition lacks."""
    remap = {}
    for value, name in card.labels.items():
        if value == 0:
            continue
        token = re.split(r"[\s(_-]", name.strip(), maxsplit=1)[0].upper()
        target = _LABEL_BY_NAME.get(token)
        if target is None or target not in edition.labels:
            raise ModelCardError(
                f"model {card.id!r}: label {value} {name!r} has no {edition.name} counterpart "
                f"({', '.join(f'{v} {n}' for v, n in edition.labels.items())})"
            )
        if target != value:
            remap[value] = target
    return remap


def lesion_settings_for(case_id: str, edition: BratsEdition) -> str:
    """Lesion-wise settings of a case's sub-challenge (``BraTS-MEN-00004-000`` -> ``BraTS-MEN-2023``).

    The sub-challenges differ in dilation and lesion-size threshold; an unknown one gets the edition's.
    """
    from medswin.metrics.brats_settings import LESION_WISE_SETTINGS

    match = re.match(r"^BraTS-([A-Z]+)-", case_id)
    year = edition.lesion_settings.rsplit("-", 1)[1]
    key = f"BraTS-{match[1]}-{year}" if match else ""
    return key if key in LESION_WISE_SETTINGS else edition.lesion_settings


def _case_files(folder: Path) -> dict[str, dict[str, Path]]:
    """case id -> {modality: path} for every ``<case>-<modality>.nii.gz`` under ``folder`` (one level deep)."""
    pattern = re.compile(r"^(?P<case>.+)-(?P<modality>t1n|t1c|t2w|t2f)\.nii\.gz$", re.IGNORECASE)
    found: dict[str, dict[str, Path]] = {}
    candidates = [*folder.glob("*.nii.gz"), *folder.glob("*/*.nii.gz")]
    for path in sorted(candidates):
        match = pattern.match(path.name)
        if match and not path.name.startswith("."):
            found.setdefault(match["case"], {})[match["modality"].lower()] = path
    return found


def brats_cases(folder: str | Path, card: ModelCard) -> list[Case]:
    """The cases of a BraTS input folder, channels in ``card``'s order.

    A case missing a sequence is still returned, with the missing file's expected path, so that the
    batch reports it ("... -t2w.nii.gz: no such file") while the other cases run.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise MedSwinError(f"{folder}: no such BraTS input folder")
    order = [_modality(c) for c in card.channels]
    found = _case_files(folder)
    if not found:
        raise MedSwinError(f"{folder}: no <case>-t1n/-t1c/-t2w/-t2f.nii.gz files found")
    cases = []
    for case_id, files in sorted(found.items()):
        where = next(iter(files.values())).parent
        paths = tuple(files.get(m, where / f"{case_id}-{m}.nii.gz") for m in order)
        cases.append(Case(case_id, paths))
    return cases


def pack_submission(predictions: Path, case_ids: Sequence[str], target: Path) -> Path:
    """Zip ``<case>.nii.gz`` of ``case_ids`` flat into ``target`` (written atomically)."""
    return write_submission_zip(target, {f"{c}.nii.gz": predictions / f"{c}.nii.gz" for c in case_ids})


def validate_brats(
    submission: str | Path, edition: BratsEdition, images: str | Path | None = None
) -> ValidationReport:
    """Check a submission folder or zip as the portal would; ``images``: the input folder, to check grids."""
    from medswin.io import read_image

    report = ValidationReport(edition.name)
    inputs = _case_files(Path(images)) if images is not None else {}
    with submission_folder(submission) as (folder, names):
        seen: dict[str, str] = {}
        for name in names:
            match = SUBMISSION_NAME.search(name)
            if "/" in name:
                report.add(name, "inside a sub-folder; the portal expects the files at the top of the zip")
            if not match:
                report.add(
                    name,
                    "not a prediction: names must end in NNNNN-NNN.nii.gz (e.g. BraTS-GLI-00001-000.nii.gz)",
                )
                continue
            if match[1] in seen:
                report.add(name, f"duplicate case id {match[1]} (also {seen[match[1]]})")
                continue
            seen[match[1]] = name
            case = Path(name).name[: -len(".nii.gz")]
            report.checked.append(case)
            loaded = read_submitted_labels(report, case, folder / name)
            if loaded is None:
                continue
            labels, stored = loaded
            reference = None
            if case in inputs:
                reference = read_image(next(iter(inputs[case].values())))
            elif inputs:
                report.add(case, "no such case among the input images")
            elif tuple(labels.shape) not in edition.shapes:
                accepted = " or ".join("x".join(map(str, s)) for s in edition.shapes)
                report.add(case, f"shape {'x'.join(map(str, labels.shape))} (expected {accepted})")
            elif tuple(labels.shape) == (240, 240, 155) and not np.allclose(
                labels.affine, SRI24_AFFINE, atol=1e-3
            ):
                report.add(case, "affine is not the SRI-24 grid's (1 mm, LPS-flipped, origin 0/239/0)")
            check_label_image(
                report, case, labels, {0, *edition.labels}, stored_dtype=stored, reference=reference
            )
        for case in sorted(set(inputs) - {Path(n).name[: -len(".nii.gz")] for n in seen.values()}):
            report.add(case, "missing: an input case has no prediction")
    return report
