"""The structure table: names in every spelling find one entry; codes are the DICOM standard's."""

from __future__ import annotations

import pytest
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from medswin.io.anatomy import STRUCTURES, find_structure, structure_colors


@pytest.mark.parametrize(
    ("name", "code", "side"),
    [
        ("liver", codes.SCT.Liver, None),
        ("Spleen", codes.SCT.Spleen, None),
        ("kidney_right", codes.SCT.Kidney, codes.SCT.Right),
        ("left kidney", codes.SCT.Kidney, codes.SCT.Left),
        ("right adrenal gland", codes.SCT.AdrenalGland, codes.SCT.Right),
        ("vertebra", codes.SCT.Vertebra, None),
        ("portal and splenic veins", codes.SCT.PortalVein, None),
        ("inferior vena cava", codes.SCT.InferiorVenaCava, None),
        ("NETC (necrotic tumor core)", codes.SCT.Necrosis, None),
        ("SNFH (peritumoral edema)", codes.SCT.Edema, None),
        ("ET (enhancing tumor)", codes.SCT.Neoplasm, None),
        ("lesion", codes.SCT.Lesion, None),
    ],
)
def test_label_names_find_their_snomed_code(name, code, side):
    entry = find_structure(name)
    assert entry is not None
    assert (entry.type.value, entry.type.scheme) == (code.value, "SCT")
    assert (entry.laterality.value if entry.laterality else None) == (side.value if side else None)


def test_every_code_is_in_pydicoms_dictionary_of_the_standard():
    """A typo in a code value would be caught here: each (value, meaning) pair is the standard's."""
    by_value = {}
    for keyword in dir(codes.SCT):
        try:
            code = getattr(codes.SCT, keyword)
        except AttributeError:
            continue
        if not isinstance(code, Code):
            continue
        by_value.setdefault(code.value, set()).add(code.meaning.lower())
    for entry in STRUCTURES.values():
        for term in (entry.category, entry.type):
            assert term.meaning.lower() in by_value.get(term.value, set()), (entry.name, term)


def test_both_kidneys_have_distinct_colours_and_unknown_names_keep_the_fallback():
    colors = structure_colors({1: "kidney_right", 2: "kidney_left", 3: "thing"}, {3: (1, 2, 3), 1: (9, 9, 9)})
    assert colors[1] == STRUCTURES["kidney"].color and colors[2] != colors[1]
    assert colors[3] == (1, 2, 3)
    assert find_structure("thing") is None and find_structure("right") is None
