"""Physical plausibility of each predicted structure: its volume, its pieces, the scan's edge.

* ``volume:<name>``: the volume against the card's plausible adult range (``volume_ranges_ml``);
  outside it ``warn``, outside half the low / twice the high bound ``fail`` (a 50 L liver is a
  wrong pixel size, not a patient); not found at all ``warn``. No range in the card: no check.
* ``pieces:<name>``: an organ that is one piece in every patient (liver, spleen, one kidney ...)
  split into several large pieces usually means part of another structure got its label.
* ``edge:<name>``: an organ that touches the scan's edge is cut off, so its volume is a lower bound.
"""

from __future__ import annotations

from medswin.io.anatomy import find_structure
from medswin.models.card import ModelCard
from medswin.qc.core import Check
from medswin.qc.structures import Structure

__all__ = [
    "MIN_PIECE_FRACTION",
    "MIN_EDGE_CM2",
    "FAIL_FACTOR",
    "expected_pieces",
    "whole_organ",
    "volume_check",
    "pieces_check",
    "edge_check",
    "plausibility_checks",
]

#: a piece counts when it holds at least this fraction of its structure's volume (specks do not).
MIN_PIECE_FRACTION = 0.05
#: an organ touching the scan's edge over at least this area (cm²) is taken as cut off.
MIN_EDGE_CM2 = 1.0
#: a volume beyond this factor outside its range (below low / FAIL_FACTOR, above high x FAIL_FACTOR) fails.
FAIL_FACTOR = 2.0

# organs that are one piece in every patient (two when a label holds both sides of a pair)
_ONE_PIECE = {
    "liver",
    "spleen",
    "kidney",
    "gallbladder",
    "stomach",
    "pancreas",
    "urinary bladder",
    "heart",
    "brain",
    "adrenal gland",
    "femur",
}
_PAIRED = {"kidney", "adrenal gland", "femur", "lung"}
# organs a scan of their region holds whole; long structures (aorta, spine, bowel) cross its edges
_WHOLE = _ONE_PIECE - {"femur"}


def expected_pieces(name: str) -> int | None:
    """How many pieces the structure called ``name`` is in a patient (None: any number, e.g. ribs, tumours)."""
    structure = find_structure(name)
    if structure is None or structure.name not in _ONE_PIECE:
        return None
    return 2 if structure.name in _PAIRED and structure.laterality is None else 1


def whole_organ(name: str, card: ModelCard) -> bool:
    """True when a scan of the card's region should hold the structure whole (a compact organ, or
    one the card gives a volume range for)."""
    structure = find_structure(name)
    return name in card.volume_ranges_ml or (structure is not None and structure.name in _WHOLE)


def volume_check(structure: Structure, low: float, high: float) -> Check:
    name, volume = structure.name, round(structure.volume_ml, 1)
    limit = [low, high]
    if structure.voxels == 0:
        return Check(
            f"volume:{name}",
            "warn",
            0.0,
            limit,
            f"No {name} was found: it lies outside the scan, was removed, or the model missed it.",
        )
    if low <= volume <= high:
        return Check(
            f"volume:{name}", "ok", volume, limit, f"{name} {volume:g} mL is within {low:g}-{high:g} mL."
        )
    far = volume < low / FAIL_FACTOR or volume > high * FAIL_FACTOR
    side = "below" if volume < low else "above"
    reason = (
        f"{name} {volume:g} mL is {side} the plausible adult range {low:g}-{high:g} mL: "
        + (
            "far outside any patient's; check the pixel size and the image's orientation"
            if far
            else "disease, or the model labelled the wrong tissue; look at it"
        )
        + "."
    )
    return Check(f"volume:{name}", "fail" if far else "warn", volume, limit, reason)


def pieces_check(structure: Structure, expected: int) -> Check:
    name = structure.name
    large = [s for s in structure.piece_sizes if s >= MIN_PIECE_FRACTION * structure.voxels]
    count = len(large)
    if count <= expected:
        return Check(f"pieces:{name}", "ok", count, expected, f"{name} is in {count} piece(s), as expected.")
    share = round(100 * sum(large[expected:]) / structure.voxels)
    return Check(
        f"pieces:{name}",
        "warn",
        count,
        expected,
        f"{name} is split into {count} large pieces (expected {expected}; the extra ones hold {share}% of it): "
        "part of another structure may carry its label.",
    )


def edge_check(structure: Structure) -> Check:
    name = structure.name
    touching = {edge: round(area, 1) for edge, area in structure.edge_cm2.items() if area >= MIN_EDGE_CM2}
    area = round(sum(touching.values()), 1)
    if not touching:
        return Check(f"edge:{name}", "ok", area, MIN_EDGE_CM2, f"{name} lies inside the scan.")
    where = ", ".join(f"{edge} edge" for edge in touching)
    return Check(
        f"edge:{name}",
        "warn",
        area,
        MIN_EDGE_CM2,
        f"{name} is cut by the scan's {where} ({area:g} cm² on the edge): its volume "
        f"{structure.volume_ml:.1f} mL is a lower bound.",
    )


def plausibility_checks(
    structures: dict[int, Structure], card: ModelCard, *, volumes: bool = True
) -> list[Check]:
    """Volume, pieces and edge checks for every structure that has them (see the module docstring).

    ``volumes``: compare volumes with the card's ranges (3D images only: a 2D image has areas).
    """
    checks: list[Check] = []
    for structure in structures.values():
        name = structure.name
        if volumes and name in card.volume_ranges_ml:
            checks.append(volume_check(structure, *card.volume_ranges_ml[name]))
        if structure.voxels == 0:
            continue
        expected = expected_pieces(name)
        if expected is not None:
            checks.append(pieces_check(structure, expected))
        if whole_organ(name, card):
            checks.append(edge_check(structure))
    return checks
