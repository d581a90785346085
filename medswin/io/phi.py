"""Patient identifiers seen in DICOM headers, and a log filter that hides them.

Folder names, series descriptions and error messages often carry a patient's name or id (a PACS
export named ``DOE_JOHN_12345``), so logs leak them even though medswin never logs a header's
patient attributes itself. The DICOM reader therefore hands every header it reads to
:func:`remember_identifiers`; :class:`PHIFilter`, which the CLI installs on its log handlers
unless ``--log-phi`` is given, replaces those values in every formatted record with ``[PHI]``.

Only values actually present in headers read by this process are masked: nothing is guessed, and
values of fewer than three characters (``"1"``, ``"O"``) are ignored because they identify nobody
and masking them would destroy every log line.
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
_words: set[str] = set()
_pattern: re.Pattern[str] | None = None


def _name_forms(name: str) -> tuple[set[str], set[str]]:
    """A DICOM person name (``Family^Given^Middle^Prefix^Suffix``) as written in paths and text.

    Returns ``(whole forms, single name parts)``: the parts are masked as whole words only.
    """
    parts = [p.strip() for p in name.split("^") if p.strip()]
    forms = {name.strip(" ^")}
    for chosen in (parts, parts[:2]):  # every component, and family + given name alone
        for joiner in (" ", "_", "-", ".", ", ", ","):
            forms.add(joiner.join(chosen))
            forms.add(joiner.join(reversed(chosen)))
    return forms, {word for part in parts for word in re.split(r"[\s,._-]+", part) if word}


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
    found_values: set[str] = set()
    found_words: set[str] = set()
    for keyword in PHI_ATTRIBUTES:
        try:
            value = ds.get(keyword)
        except Exception:  # an unparsable value is skipped, never fatal to reading
            continue
        for text in _strings(value):
            if "Name" in keyword:
                forms, words = _name_forms(text)
                found_values |= forms
                found_words |= words
            else:
                found_values.add(text)
    found_values = {v for v in found_values if len(v) >= _MIN_LENGTH}
    found_words = {w for w in found_words if len(w) >= _MIN_LENGTH}
    with _lock:
        if found_values <= _values and found_words <= _words:
            return
        _values.update(found_values)
        _words.update(found_words)
        _pattern = None


def identifiers() -> frozenset[str]:
    """Every value currently masked (whole values and name parts)."""
    with _lock:
        return frozenset(_values | _words)


def forget_identifiers() -> None:
    """Empty the registry (tests; a long-running host that starts over)."""
    global _pattern
    with _lock:
        _values.clear()
        _words.clear()
        _pattern = None


def _compiled() -> re.Pattern[str] | None:
    global _pattern
    with _lock:
        if _pattern is None and (_values or _words):
            # Longest first so "Doe^John" wins over "Doe"; name parts only as whole words
            # (not inside other words), whole values anywhere (inside paths and ids).
            whole = [re.escape(v) for v in sorted(_values, key=len, reverse=True)]
            parts = [rf"(?<![^\W_]){re.escape(w)}(?![^\W_])" for w in sorted(_words, key=len, reverse=True)]
            _pattern = re.compile("|".join(whole + parts), re.IGNORECASE)
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
