"""Case names that do not carry the patient's name into the output folder (``--case-names``).

Case ids come from file and folder names, which PACS exports often name after the patient; the id
then appears in every output file name, the record, ``summary.csv`` and the preview's title.

* ``source``: the id from the input's name (the default).
* ``hash``: ``case-<12 hex>``, an HMAC-SHA-256 of the source id under the output folder's key
  (:func:`~medswin.batch.folder.folder_key`): the same case gets the same name on every run into
  that folder, and nobody without the key can test a guessed name against it.
* ``index``: ``case-0001``, ``case-0002`` ... in the order cases are first seen by the folder: the
  folder keeps ``OUT/.medswin/case-names.json`` (keyed digests only, no names), so a rerun with
  more inputs gives the new cases new numbers and never reuses a number for another patient.

Both files live in the output folder's work area, so the mapping from a name back to its source
needs the folder *and* the inputs; ``summary.csv`` and the records hold only the new names, and
:func:`hide_sources` takes the input's paths and every source UID out of a failed case's reason
(an error names the file it could not read, a folder named after the patient).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from medswin.batch.cases import Case
from medswin.batch.folder import WORK_AREA, folder_key
from medswin.errors import MedSwinError
from medswin.files import exclusive_lock, write_atomic

__all__ = ["CASE_NAMES", "rename_cases", "hide_sources", "HIDDEN_INPUT", "HIDDEN_UID"]

#: the ``--case-names`` choices.
CASE_NAMES = ("source", "index", "hash")


#: what an input's path and a source UID become in a reason.
HIDDEN_INPUT = "<input>"
HIDDEN_UID = "<uid>"
#: a DICOM UID: three or more numeric components, at least 16 characters (a version such as 0.28.2
#: or an IPv4 address is shorter).
_UID = re.compile(r"(?<![\w.])[0-9]+(?:\.[0-9]+){2,}(?![0-9])")
#: what a path may continue with inside a message (a file in the input folder).
_PATH_TAIL = r"(?:/[^\s:;,()'\"]*)?"


def _uid_hidden(match: re.Match[str]) -> str:
    return HIDDEN_UID if len(match.group(0)) >= 16 else match.group(0)


def hide_sources(text: str, case: Case) -> str:
    """``text`` with the case's input paths (and anything below them), their names and every source
    UID replaced: a reason in ``summary.csv`` says what went wrong without saying whose it was."""
    if not text:
        return text
    spellings: set[str] = set()
    names: set[str] = set()
    for path in case.paths:
        path = Path(path)
        spellings |= {str(path), str(path.absolute())}
        with contextlib.suppress(OSError):  # a loop of links: the other spellings still count
            spellings.add(str(path.resolve()))
        names |= {path.name, path.name.split(".")[0]}
    for spelling in sorted(spellings, key=len, reverse=True):
        text = re.sub(re.escape(spelling) + _PATH_TAIL, HIDDEN_INPUT, text)
    for name in sorted((n for n in names if len(n) >= 3), key=len, reverse=True):
        text = re.sub(rf"(?<![^\W_]){re.escape(name)}(?![^\W_])", HIDDEN_INPUT, text, flags=re.IGNORECASE)
    if case.series_uid:
        text = text.replace(str(case.series_uid), HIDDEN_UID)
    return _UID.sub(_uid_hidden, text)


def _digest(key: bytes, case_id: str) -> str:
    return hmac.new(key, case_id.encode("utf-8"), hashlib.sha256).hexdigest()


def _numbers(area: Path, digests: Sequence[str]) -> dict[str, int]:
    """Digest -> number, adding the new digests after the known ones (under a lock: shards share it)."""
    path = area / "case-names.json"
    with exclusive_lock(area / "case-names.lock"):
        try:
            known: dict[str, int] = json.loads(path.read_text()) if path.exists() else {}
        except ValueError:
            raise MedSwinError(f"{path}: unreadable case-name table; remove it to start over") from None
        new = [d for d in dict.fromkeys(digests) if d not in known]
        if new:
            start = max(known.values(), default=0) + 1
            known.update({digest: start + i for i, digest in enumerate(new)})
            write_atomic(path, json.dumps(known, indent=1) + "\n")
    return known


def rename_cases(cases: Sequence[Case], scheme: str, output_dir: Path) -> list[Case]:
    """``cases`` with ids given by ``scheme`` (see the module docstring); ``source`` changes nothing."""
    if scheme not in CASE_NAMES:
        raise MedSwinError(f"--case-names must be one of {', '.join(CASE_NAMES)}, got {scheme!r}")
    if scheme == "source" or not cases:
        return list(cases)
    area = Path(output_dir) / WORK_AREA
    try:
        key = folder_key(output_dir)
        digests = {case.case_id: _digest(key, case.case_id) for case in cases}
        numbers = _numbers(area, [digests[c] for c in sorted(digests)]) if scheme == "index" else {}
    except OSError as error:
        raise MedSwinError(f"{area}: cannot keep the case-name key ({error.strerror or error})") from error
    width = max(4, len(str(max(numbers.values(), default=0))))

    def name(case_id: str) -> str:
        digest = digests[case_id]
        return f"case-{numbers[digest]:0{width}d}" if scheme == "index" else f"case-{digest[:12]}"

    return [replace(case, case_id=name(case.case_id)) for case in cases]
