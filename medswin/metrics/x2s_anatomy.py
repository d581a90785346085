"""Which labels of a Swin-X2S dataset are which bones: femurs, hips and sacrum, vertebrae, ribs.

The Swin-X2S tables group their numbers by anatomy, and the clinical parameters are measured per
bone (the pelvis from both hips). The datasets name their labels consistently
(``data_manifests/x2s_*/dataset.json``: ``femur_left``, ``vertebrae_L1``, ``rib_right_12``, ...),
so the grouping is read from the names, for TotalSeg-all (55 classes) and its subsets,
CTPelvic1K, CTSpine1K, VerSe'19 and RibSeg v2 alike.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from medswin.errors import MetricInputError

__all__ = ["GROUPS", "X2SAnatomy", "X2SStructure", "anatomy_from_labels"]

#: anatomy groups of the Swin-X2S tables, in table order; labels of no group are "other".
GROUPS: tuple[str, ...] = ("femur", "pelvis", "vertebra", "rib")

_VERTEBRA = re.compile(r"^vertebrae?_([ctls])(\d+)$")
_RIB = re.compile(r"^rib_(left|right)_(\d+)$")
_SINGLE = {"femur_left", "femur_right", "hip_left", "hip_right", "sacrum"}


@dataclass(frozen=True)
class X2SStructure:
    """One bone measured as a whole: a femur, the pelvis (both hips), a vertebra or a rib.

    Attributes:
        name: ``femur_left``, ``pelvis``, ``vertebrae_L1``, ``rib_left_5``, ...
        group: one of :data:`GROUPS`.
        labels: the label values it is made of (pelvis: left hip, right hip).
    """

    name: str
    group: str
    labels: tuple[int, ...]


@dataclass(frozen=True)
class X2SAnatomy:
    """Which label values of a dataset's label map are which Swin-X2S bones.

    Attributes:
        names: every foreground label value and its name.
        femur_left / femur_right / hip_left / hip_right / sacrum: label values, None when the
            dataset has no such class.
        vertebrae: vertebra labels in cranio-caudal order (C1 first).
        ribs: rib labels, left 1-12 then right 1-12.
    """

    names: Mapping[int, str]
    femur_left: int | None = None
    femur_right: int | None = None
    hip_left: int | None = None
    hip_right: int | None = None
    sacrum: int | None = None
    vertebrae: tuple[int, ...] = ()
    ribs: tuple[int, ...] = ()

    @property
    def labels(self) -> tuple[int, ...]:
        """Every foreground label value, ascending."""
        return tuple(sorted(self.names))

    def group_of(self, label: int) -> str:
        """The anatomy group of a label value: one of :data:`GROUPS`, or ``"other"``."""
        if label in (self.femur_left, self.femur_right):
            return "femur"
        if label in (self.hip_left, self.hip_right, self.sacrum):
            return "pelvis"
        if label in self.vertebrae:
            return "vertebra"
        if label in self.ribs:
            return "rib"
        return "other"

    def structures(self) -> tuple[X2SStructure, ...]:
        """The bones with clinical parameters, in table order (the pelvis needs both hips)."""
        out = [
            X2SStructure(self.names[v], "femur", (v,))
            for v in (self.femur_left, self.femur_right)
            if v is not None
        ]
        if self.hip_left is not None and self.hip_right is not None:
            out.append(X2SStructure("pelvis", "pelvis", (self.hip_left, self.hip_right)))
        out += [X2SStructure(self.names[v], "vertebra", (v,)) for v in self.vertebrae]
        out += [X2SStructure(self.names[v], "rib", (v,)) for v in self.ribs]
        return tuple(out)

    def __repr__(self) -> str:
        other = sum(1 for v in self.names if self.group_of(v) == "other")
        return (
            f"X2SAnatomy(femur L/R {self.femur_left}/{self.femur_right}, hip L/R {self.hip_left}/"
            f"{self.hip_right}, sacrum {self.sacrum}, {len(self.vertebrae)} vertebrae, {len(self.ribs)} ribs, "
            f"{other} other)"
        )


def anatomy_from_labels(labels: Mapping[int, str] | Mapping[str, str]) -> X2SAnatomy:
    """Find femurs, hips, sacrum, vertebrae and ribs in a label map by their names.

    Args:
        labels: ``{value: name}`` as in a manifest's ``labels`` (string keys accepted); value 0
            (background) is ignored. Names as in ``data_manifests/x2s_*/dataset.json``:
            ``femur_left``, ``hip_right``, ``sacrum``, ``vertebrae_C1`` .. ``vertebrae_L6``,
            ``rib_left_1`` .. ``rib_right_12`` (case-insensitive); other names are group "other".

    Raises:
        MetricInputError: a value is not a non-negative integer, two labels share a bone name,
            or there is no foreground label at all.

    Example:
        >>> anatomy_from_labels({0: "background", 1: "sacrum", 2: "hip_left", 3: "hip_right"}).hip_left
        2
    """
    names: dict[int, str] = {}
    single: dict[str, int] = {}
    vertebrae: list[tuple[tuple[int, int], int]] = []
    ribs: list[tuple[tuple[int, int], int]] = []
    seen: dict[str, int] = {}
    for key, name in labels.items():
        try:
            value = int(key)
        except (TypeError, ValueError):
            raise MetricInputError(f"label map: value {key!r} is not an integer") from None
        if value < 0:
            raise MetricInputError(f"label map: value {value} is negative")
        if value == 0:
            continue
        text = str(name).strip().lower()
        if text in seen:
            raise MetricInputError(
                f"label map: values {seen[text]} and {value} are both named {name!r}; each bone needs one label"
            )
        seen[text] = value
        names[value] = str(name)
        if text in _SINGLE:
            single[text] = value
        elif match := _VERTEBRA.match(text):
            vertebrae.append((("ctls".index(match[1]), int(match[2])), value))
        elif match := _RIB.match(text):
            ribs.append(((0 if match[1] == "left" else 1, int(match[2])), value))
    if not names:
        raise MetricInputError("label map has no foreground label (only background)")
    return X2SAnatomy(
        names=names,
        femur_left=single.get("femur_left"),
        femur_right=single.get("femur_right"),
        hip_left=single.get("hip_left"),
        hip_right=single.get("hip_right"),
        sacrum=single.get("sacrum"),
        vertebrae=tuple(v for _, v in sorted(vertebrae)),
        ribs=tuple(v for _, v in sorted(ribs)),
    )
