"""One table of structure codes and display colours, keyed by label name.

DICOM-SEG segments need a coded property category and type (SNOMED CT, "SCT"), and viewers need
colours that a reader recognises. Both come from here, looked up by the label's *name* (model
cards, manifests, layers all carry names), so "kidney_left", "left kidney" and "Kidney (left)" find
the same entry:

* codes: the values of the DICOM standard's context groups (CID 7150 segmentation property
  categories, CID 7140/7151 anatomic structures, CID 7159 lesion types), as pydicom's
  ``pydicom.sr.codedict.codes.SCT`` lists them; left/right is a SCT laterality modifier
  (24028007 Right, 7771000 Left) on the structure's type, as 3D Slicer and dcmqi write it;
* colours: the abdominal organs keep the 3D Slicer GenericAnatomyColors values medswin's cards
  already used (liver 221,130,101; spleen 157,108,162; kidney 185,102,83; bone 241,214,145 ...),
  other entries are chosen in that style; the left member of a pair is drawn lighter so both
  kidneys no longer share one colour; BraTS regions in the red (necrosis) / green (oedema) /
  yellow (enhancing) usual in BraTS figures.

Names the table does not know get ``None``: callers keep their own default (the card's colour,
SEG category Tissue / type Organ). Pure data: no pydicom import here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "CodedTerm",
    "Structure",
    "LATERALITY",
    "STRUCTURES",
    "find_structure",
    "structure_colors",
]

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class CodedTerm:
    """A coded concept: ``value`` in ``scheme`` (``"SCT"`` = SNOMED CT), with its display ``meaning``."""

    value: str
    scheme: str
    meaning: str


def _sct(value: str, meaning: str) -> CodedTerm:
    return CodedTerm(value, "SCT", meaning)


TISSUE = _sct("85756007", "Tissue")
ANATOMICAL_STRUCTURE = _sct("91723000", "Anatomical Structure")
MORPHOLOGICALLY_ABNORMAL = _sct("49755003", "Morphologically Abnormal Structure")
#: laterality modifiers of a structure's type.
LATERALITY: dict[str, CodedTerm] = {"right": _sct("24028007", "Right"), "left": _sct("7771000", "Left")}


@dataclass(frozen=True)
class Structure:
    """What a label is, for DICOM-SEG and display.

    Attributes:
        name: canonical name of the table entry (``"kidney"``).
        category: SegmentedPropertyCategory (e.g. Anatomical Structure, Morphologically Abnormal Structure).
        type: SegmentedPropertyType (e.g. SCT 64033007 Kidney).
        color: display colour (R, G, B) in 0..255, already lighter for a left-sided structure.
        laterality: the Right/Left modifier when the label name says which side, else ``None``.
    """

    name: str
    category: CodedTerm
    type: CodedTerm
    color: RGB
    laterality: CodedTerm | None = None


# canonical name -> (category, type, colour, other names it goes by); names are matched after
# lower-casing, "_"/"-" -> " " and removing the words right/left
_TABLE: dict[str, tuple[CodedTerm, CodedTerm, RGB, tuple[str, ...]]] = {
    "liver": (ANATOMICAL_STRUCTURE, _sct("10200004", "Liver"), (221, 130, 101), ()),
    "spleen": (ANATOMICAL_STRUCTURE, _sct("78961009", "Spleen"), (157, 108, 162), ()),
    "kidney": (ANATOMICAL_STRUCTURE, _sct("64033007", "Kidney"), (185, 102, 83), ("kidneys",)),
    "vertebra": (ANATOMICAL_STRUCTURE, _sct("51282000", "Vertebra"), (241, 214, 145), ("vertebrae",)),
    "spine": (ANATOMICAL_STRUCTURE, _sct("421060004", "Spine"), (241, 214, 145), ("vertebral column",)),
    "gallbladder": (ANATOMICAL_STRUCTURE, _sct("28231008", "Gallbladder"), (139, 150, 98), ("gall bladder",)),
    "esophagus": (ANATOMICAL_STRUCTURE, _sct("32849002", "Esophagus"), (211, 171, 143), ("oesophagus",)),
    "stomach": (ANATOMICAL_STRUCTURE, _sct("69695003", "Stomach"), (216, 132, 105), ()),
    "duodenum": (ANATOMICAL_STRUCTURE, _sct("38848004", "Duodenum"), (255, 253, 229), ()),
    "pancreas": (ANATOMICAL_STRUCTURE, _sct("15776009", "Pancreas"), (249, 180, 111), ()),
    "adrenal gland": (ANATOMICAL_STRUCTURE, _sct("23451007", "Adrenal gland"), (244, 217, 154), ("adrenal",)),
    "aorta": (ANATOMICAL_STRUCTURE, _sct("15825003", "Aorta"), (224, 97, 76), ()),
    "inferior vena cava": (
        ANATOMICAL_STRUCTURE,
        _sct("64131007", "Inferior vena cava"),
        (0, 151, 206),
        ("ivc", "vena cava inferior"),
    ),
    "portal vein": (
        ANATOMICAL_STRUCTURE,
        _sct("32764006", "Portal vein"),
        (0, 112, 165),
        ("portal and splenic veins", "portal vein and splenic vein"),
    ),
    "splenic vein": (ANATOMICAL_STRUCTURE, _sct("35819009", "Splenic vein"), (0, 112, 165), ()),
    "urinary bladder": (ANATOMICAL_STRUCTURE, _sct("89837001", "Bladder"), (222, 154, 132), ("bladder",)),
    "lung": (ANATOMICAL_STRUCTURE, _sct("39607008", "Lung"), (197, 165, 145), ()),
    "heart": (ANATOMICAL_STRUCTURE, _sct("80891009", "Heart"), (206, 110, 84), ()),
    "brain": (ANATOMICAL_STRUCTURE, _sct("12738006", "Brain"), (250, 250, 225), ()),
    "femur": (ANATOMICAL_STRUCTURE, _sct("71341001", "Femur"), (255, 238, 170), ()),
    "rib": (ANATOMICAL_STRUCTURE, _sct("113197003", "Rib"), (253, 232, 158), ("ribs",)),
    "sacrum": (ANATOMICAL_STRUCTURE, _sct("54735007", "Sacrum"), (241, 214, 145), ()),
    "pelvis": (ANATOMICAL_STRUCTURE, _sct("816092008", "Pelvis"), (241, 214, 145), ("hip",)),
    "bone": (TISSUE, _sct("272673000", "Bone"), (241, 214, 145), ()),
    # BraTS tumour regions (2021 and 2023 names)
    "necrotic tumor core": (
        MORPHOLOGICALLY_ABNORMAL,
        _sct("6574001", "Necrosis"),
        (220, 40, 40),
        ("netc", "ncr", "necrosis", "necrotic core", "non enhancing tumor core", "ncr net"),
    ),
    "peritumoral edema": (
        MORPHOLOGICALLY_ABNORMAL,
        _sct("79654002", "Edema"),
        (60, 190, 75),
        ("snfh", "ed", "edema", "oedema", "surrounding non enhancing flair hyperintensity"),
    ),
    "enhancing tumor": (
        MORPHOLOGICALLY_ABNORMAL,
        _sct("108369006", "Neoplasm"),
        (250, 215, 30),
        ("et", "enhancing tumour", "enhancing"),
    ),
    "tumor core": (MORPHOLOGICALLY_ABNORMAL, _sct("108369006", "Neoplasm"), (230, 110, 40), ("tc",)),
    "whole tumor": (MORPHOLOGICALLY_ABNORMAL, _sct("108369006", "Neoplasm"), (120, 200, 220), ("wt",)),
    "skin lesion": (MORPHOLOGICALLY_ABNORMAL, _sct("95324001", "Skin lesion"), (205, 90, 120), ()),
    "lesion": (MORPHOLOGICALLY_ABNORMAL, _sct("52988006", "Lesion"), (205, 90, 120), ("tumor", "tumour")),
}

#: canonical name -> its entry without laterality.
STRUCTURES: dict[str, Structure] = {
    name: Structure(name, category, kind, color) for name, (category, kind, color, _) in _TABLE.items()
}
_ALIASES: dict[str, str] = {
    alias: name for name, (*_, aliases) in _TABLE.items() for alias in (name, *aliases)
}
_SIDE = re.compile(r"\b(right|left)\b")
# how much lighter (towards white) the left member of a pair is drawn
_LEFT_LIGHTER = 0.35


def _normal(text: str) -> str:
    text = re.sub(r"[_\-/,]+", " ", text.lower())
    return re.sub(r"\s+", " ", text).strip()


def _candidates(name: str) -> list[str]:
    """``"NETC (necrotic tumor core)"`` -> the whole, the part before the brackets, the part inside."""
    whole = _normal(name)
    found = [whole]
    match = re.fullmatch(r"(.*?)\s*\((.*)\)", whole)
    if match:
        found += [match.group(1).strip(), match.group(2).strip()]
    return [c for c in found if c]


def find_structure(label_name: str) -> Structure | None:
    """The table entry a label name denotes (with its side, when it says one), or ``None``.

    Examples: ``"kidney_left"``, ``"left kidney"`` -> Kidney with the Left modifier (lighter colour);
    ``"ET (enhancing tumor)"`` -> Neoplasm; ``"liver"`` -> Liver.
    """
    for candidate in _candidates(label_name):
        sides = set(_SIDE.findall(candidate))
        base = _normal(_SIDE.sub(" ", candidate))
        name = _ALIASES.get(base)
        if name is None:
            continue
        entry = STRUCTURES[name]
        if len(sides) != 1:
            return entry
        side = sides.pop()
        color = entry.color
        if side == "left":
            color = tuple(round(c + _LEFT_LIGHTER * (255 - c)) for c in color)  # type: ignore[assignment]
        return Structure(entry.name, entry.category, entry.type, color, LATERALITY[side])
    return None


def structure_colors(names: Mapping[int, str], fallback: Mapping[int, RGB] | None = None) -> dict[int, RGB]:
    """Label value -> display colour: the table's for names it knows, else ``fallback``'s (e.g. a card's).

    Values neither knows are left out (viewers pick a palette colour for them).
    """
    colors: dict[int, RGB] = {}
    for value, name in names.items():
        entry = find_structure(str(name))
        if entry is not None:
            colors[int(value)] = entry.color
        elif fallback and int(value) in fallback:
            colors[int(value)] = tuple(int(c) for c in fallback[int(value)])  # type: ignore[assignment]
    return colors
