"""Which prediction goes with which reference: files paired by case name.

One rule for ``medswin evaluate`` and ``medswin x2s evaluate``: a label image's case is its file name
without the image ending (:func:`medswin.io.formats.case_name`), so ``c1.mhd`` pairs with
``c1.nii.gz``. Two single files are one pair whatever their names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medswin.errors import MedSwinError
from medswin.io.formats import case_name, endings, file_format

__all__ = ["LABEL_ENDINGS", "Pairing", "label_case", "pair_cases"]

#: endings read as label images (volumes with geometry).
LABEL_ENDINGS = endings("volume")


def label_case(path: Path) -> str | None:
    """Case name of a label image file, or None for a file that is not one (hidden, other format)."""
    known = file_format(path)
    if path.name.startswith(".") or known is None or known.kind != "volume":
        return None
    return case_name(path)


@dataclass(frozen=True)
class Pairing:
    """Prediction/reference files paired by case name, and what could not be paired."""

    pairs: dict[str, tuple[Path, Path]]
    missing_predictions: list[str]
    missing_references: list[str]


def _cases_in(folder: Path, what: str) -> dict[str, Path]:
    if not folder.is_dir():
        raise MedSwinError(f"{folder}: the {what} folder does not exist or is not a folder")
    cases: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        case = label_case(path)
        if case is None or not path.is_file():
            continue
        if case in cases:
            raise MedSwinError(
                f"{folder}: case {case!r} has two files ({cases[case].name}, {path.name}); keep one per case"
            )
        cases[case] = path
    return cases


def _single_file(path: Path, what: str) -> str:
    case = label_case(path)
    if case is None:
        raise MedSwinError(
            f"{path}: the {what} is not a label image file ({', '.join(LABEL_ENDINGS)}) or a folder of them"
        )
    return case


def pair_cases(pred: Path, ref: Path) -> Pairing:
    """Pair prediction and reference label images: two folders by case name, or two files as one case.

    Args:
        pred: a folder of predictions, or one prediction file.
        ref: a folder of references, or one reference file (then ``pred`` must be a file too).
    """
    if pred.is_file() or ref.is_file():
        if not (pred.is_file() and ref.is_file()):
            file, other = (pred, ref) if pred.is_file() else (ref, pred)
            raise MedSwinError(
                f"{file} is a file but {other} is not: give two label files, or two folders of them"
            )
        _single_file(pred, "prediction")
        return Pairing({_single_file(ref, "reference"): (pred, ref)}, [], [])
    predictions = _cases_in(pred, "prediction")
    references = _cases_in(ref, "reference")
    pairs = {
        case: (predictions[case], references[case]) for case in sorted(references) if case in predictions
    }
    return Pairing(
        pairs,
        sorted(set(references) - set(predictions)),
        sorted(set(predictions) - set(references)),
    )
