"""Source headers with a distinctive value in every attribute of DICOM PS3.15 Table E.1-1, at every depth.

:func:`plant` fills each attribute of :data:`medswin.io.deidentify.ANNEX_E` that can hold a
distinctive value (text, names, dates, times, UIDs) at the top level of a header and inside
items of the sequences a CT header carries (ContributingEquipmentSequence, ReferencedSeriesSequence,
ReferencedImageSequence, and RequestAttributesSequence and ContentSequence inside each of them: two
levels deep); every sequence of the table itself gets an item full of planted values too. The series' own identifying UIDs are left as
they are (the reader needs them) and listed among the planted values: none may reach an output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset

from medswin.io.deidentify import ANNEX_E

__all__ = ["Planter", "PLANTED_NAME", "PLANTED_ID", "PLANTED_BIRTH_DATE"]

PLANTED_NAME = "Zwanenburg^Ottilie"
PLANTED_ID = "ZW-4711-0815"
PLANTED_BIRTH_DATE = "19610315"
_DATE, _TIME, _DATETIME = "19610315", "131415.9265", "19610315131415"
#: attributes the reader needs as they are (their real values are planted values all the same).
_READER_NEEDS = {"SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID", "FrameOfReferenceUID"}
#: enumerated values (M, F, O; ALTERED, UNALTERED) that a SEG writer checks: nothing distinctive.
_ENUMERATED = {"PatientSex", "PatientSexNeutered"}
_TEXT_VRS = {"LO", "SH", "LT", "ST", "UT", "UC", "CS", "AE"}
#: sequences a CT header carries that are not in the table themselves: their items get planted.
_CARRIERS = ("ContributingEquipmentSequence", "ReferencedSeriesSequence", "ReferencedImageSequence")


@dataclass
class Planter:
    """Plants values, remembering each one (as bytes) to search the outputs for."""

    values: set[bytes] = field(default_factory=set)

    def _value(self, keyword: str) -> Any:
        """The keyword's own planted value (the same at every depth: a leak shows wherever it is)."""
        vr = dictionary_VR(keyword)
        number = list(ANNEX_E).index(keyword) + 1
        if vr == "PN":
            value: Any = f"Plnt{number:04d}^Person"
        elif vr in _TEXT_VRS:
            value = f"PLNT{number:04d}Q"
        elif vr == "DA":
            value = _DATE
        elif vr == "TM":
            value = _TIME
        elif vr == "DT":
            value = _DATETIME
        elif vr == "UI":
            value = f"1.2.826.0.1.3680043.10.1234.{number}"
        else:
            return None  # numbers, ages, binary: nothing distinctive to plant
        self.values.add(str(value).encode())
        return value

    def _fill(self, ds: Dataset, sequences: bool) -> None:
        for keyword in ANNEX_E:
            if keyword in _READER_NEEDS | _ENUMERATED or keyword.startswith("MediaStorage"):
                continue
            if dictionary_VR(keyword) == "SQ":
                if sequences:  # a few values in each of the table's sequences (the carriers hold all)
                    setattr(ds, keyword, [self._small_item()])
                continue
            value = self._value(keyword)
            if value is not None:
                setattr(ds, keyword, value)

    def _small_item(self) -> Dataset:
        item = Dataset()
        for keyword in ("PersonName", "InstitutionName", "StationName", "ContentDate", "AcquisitionUID"):
            setattr(item, keyword, self._value(keyword))
        return item

    def item(self, nested: bool) -> Dataset:
        """A sequence item holding every plantable attribute; ``nested``: also one level of items
        below it (RequestAttributesSequence, ContentSequence), which hold every value again."""
        item = Dataset()
        item.Manufacturer = "planted-equipment"
        self._fill(item, sequences=False)
        if nested:
            item.RequestAttributesSequence = [self.item(nested=False)]
            item.ContentSequence = [self.item(nested=False)]
        return item

    def plant(self, ds: Dataset) -> None:
        """Plant into header ``ds`` (top level, the table's sequences and the carriers, two levels)."""
        uids = [ds.get(k) for k in sorted(_READER_NEEDS)]
        self.values.update(str(u).encode() for u in uids if u)
        self._fill(ds, sequences=True)
        ds.PatientName = PLANTED_NAME  # (planted as a token first, like every other PN)
        ds.PatientID = PLANTED_ID
        ds.PatientBirthDate = PLANTED_BIRTH_DATE
        self.values.update({PLANTED_NAME.encode(), PLANTED_ID.encode(), b"Zwanenburg", b"Ottilie"})
        for keyword in _CARRIERS:  # two levels: carrier item, then the sequences inside it
            setattr(ds, keyword, [self.item(nested=True)])
