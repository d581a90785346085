"""Patient identifiers seen in DICOM headers, and a log filter that hides them.

Folder names, series descriptions and error messages often carry a patient's name or id (a PACS
export named ``DOE_JOHN_12345``), so logs leak them even though medswin never logs a header's
patient attributes itself. The DICOM reader therefore hands every header it reads to
:func:`remember_identifiers`; :class:`PHIFilter`, which the CLI installs on its log handlers
unless ``--log-phi`` is given, replaces those values in every formatted record with ``[PHI]``.

Only values actually present in headers read by this process are masked, each as a whole word
(``_``, ``/``, spaces and punctuation end a word; letters and digits do not): a name in the forms
folders and descriptions spell it (``Doe^John``, ``DOE_JOHN``, ``John Doe``, also in ASCII:
``Müller^Hans-Jürgen`` as ``Mueller Hans-Juergen``, ``MUELLER^HANS``, ``Muller Hans``,
``mueller.hans``), an id, a birth date (``19610315`` also as ``1961-03-15``, ``15.03.1961``,
``03/15/1961`` ...). Nothing is guessed: a single part of a name (``Test`` of ``Phantom^Test``) is not masked on its own,
because it is an ordinary word as often as a name ("the intended person" stays readable, a
``test_...`` folder keeps its name). Values of fewer than three characters are ignored.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from typing import Any

__all__ = [
    "PHI_ATTRIBUTES",
    "MASK",
    "PHIFilter",
    "remember_identifiers",
    "identifiers",
    "mask_phi",
    "forget_identifiers",
]

#: header attributes whose values identify a patient (DICOM PS3.15 basic profile, patient module).
PHI_ATTRIBUTES = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientBirthTime",
    "OtherPatientIDs",
    "OtherPatientNames",
    "PatientBirthName",
    "PatientMotherBirthName",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "MedicalRecordLocator",
    "AccessionNumber",
)
MASK = "[PHI]"
_MIN_LENGTH = 3

_lock = threading.Lock()
_values: set[str] = set()
_pattern: re.Pattern[str] | None = None


#: German transliteration (``ü`` -> ``ue``), the other ASCII spelling besides dropping the accent.
_TRANSLITERATION = str.maketrans(
    {"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss"}
)


def _ascii_spellings(text: str) -> set[str]:
    """``text`` and how it is written without accents: ``Jürgen``, ``Juergen`` and ``Jurgen``."""
    import unicodedata

    stripped = unicodedata.normalize("NFKD", text.replace("ß", "ss"))
    stripped = "".join(c for c in stripped if not unicodedata.combining(c))
    return {text, text.translate(_TRANSLITERATION), stripped}


def _name_forms(name: str) -> set[str]:
    """A DICOM person name (``Family^Given^Middle^Prefix^Suffix``) as written in paths and text."""
    forms: set[str] = set()
    for spelling in _ascii_spellings(name.strip(" ^")):
        parts = [p.strip() for p in spelling.split("^") if p.strip()]
        forms.add(spelling)
        # every component; family + given name; family + the first of several given names
        first_given = parts[1].replace("-", " ").split()[:1] if len(parts) > 1 else []
        for chosen in (parts, parts[:2], parts[:1] + first_given):
            if len(chosen) < 2 and len(parts) > 1:
                continue  # a single part alone is an ordinary word as often as a name
            for joiner in (" ", "_", "-", ".", ", ", ",", "^"):
                forms.add(joiner.join(chosen))
                forms.add(joiner.join(reversed(chosen)))
    return forms


def _date_forms(value: str) -> set[str]:
    """A DICOM date (``YYYYMMDD``) and the usual ways to write it: ISO, day first, month first."""
    if len(value) != 8 or not value.isdigit():
        return {value}
    year, month, day = value[:4], value[4:6], value[6:]
    short_month, short_day = str(int(month)), str(int(day))
    forms = {value, f"{year}-{month}-{day}", f"{year}/{month}/{day}", f"{year}.{month}.{day}"}
    for d, m in ((day, month), (short_day, short_month)):
        forms |= {f"{d}.{m}.{year}", f"{d}/{m}/{year}", f"{d}-{m}-{year}", f"{m}/{d}/{year}"}
    return forms


def _strings(value: Any) -> Iterable[str]:
    if value is None:
        return
    from pydicom.multival import MultiValue

    values = list(value) if isinstance(value, MultiValue | list | tuple) else [value]
    for item in values:
        text = item.decode("latin-1", "replace") if isinstance(item, bytes) else str(item)
        if text.strip():
            yield text.strip()


def remember_identifiers(ds: Any) -> None:
    """Add the patient identifiers of DICOM header ``ds`` to the values :class:`PHIFilter` masks."""
    global _pattern
    found: set[str] = set()
    for keyword in PHI_ATTRIBUTES:
        try:
            value = ds.get(keyword)
        except Exception:  # an unparsable value is skipped, never fatal to reading
            continue
        for text in _strings(value):
            if "Name" in keyword:
                found |= _name_forms(text)
            elif keyword == "PatientBirthDate":
                found |= _date_forms(text)
            else:
                found.add(text)
    found = {v for v in found if len(v) >= _MIN_LENGTH}
    with _lock:
        if found <= _values:
            return
        _values.update(found)
        _pattern = None


def identifiers() -> frozenset[str]:
    """Every value currently masked."""
    with _lock:
        return frozenset(_values)


def forget_identifiers() -> None:
    """Empty the registry (tests; a long-running host that starts over)."""
    global _pattern
    with _lock:
        _values.clear()
        _pattern = None


def _compiled() -> re.Pattern[str] | None:
    global _pattern
    with _lock:
        if _pattern is None and _values:
            # Longest first so "Doe^John^Q" wins over "Doe^John"; never inside a longer run of
            # letters and digits ("12345" stays in "A123456"), but "_" and "/" end a word.
            whole = "|".join(re.escape(v) for v in sorted(_values, key=len, reverse=True))
            _pattern = re.compile(rf"(?<![^\W_])(?:{whole})(?![^\W_])", re.IGNORECASE)
        return _pattern


def mask_phi(text: str) -> str:
    """``text`` with every remembered patient identifier replaced by ``[PHI]``."""
    pattern = _compiled()
    return text if pattern is None or not text else pattern.sub(MASK, text)


class PHIFilter(logging.Filter):
    """A handler filter that masks remembered patient identifiers in the message and traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_phi(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_phi(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_phi(record.stack_info)
        return True
