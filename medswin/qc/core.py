"""The quality verdict's types: one check, and the verdict a prediction gets from all of them.

A check never changes a prediction; it measures one thing about it (or about its input) and says,
in a sentence a clinician understands, whether that thing is within what the model card expects.
Every front end (``<case>.json``, ``summary.csv``, ``report.html``, napari, DICOM-SEG descriptions)
shows the same :class:`QualityReport`, so the verdict a user sees is the one that was recorded.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Verdict", "VERDICTS", "Check", "QualityReport", "worst"]

Verdict = Literal["ok", "warn", "fail"]
#: verdicts from best to worst; a report's verdict is its worst check's.
VERDICTS: tuple[Verdict, ...] = ("ok", "warn", "fail")


def worst(verdicts: Iterable[str]) -> Verdict:
    """The worst of ``verdicts`` (``"ok"`` for none)."""
    rank = max((VERDICTS.index(v) for v in verdicts), default=0)
    return VERDICTS[rank]


def _plain(value: Any) -> Any:
    """A JSON-safe copy: numpy scalars to Python numbers, NaN/inf to None, tuples to lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True)
class Check:
    """One measured property of a prediction and its verdict.

    Attributes:
        name: stable identifier, ``<kind>`` or ``<kind>:<structure>`` (``volume:liver``, ``sides:spleen``).
        verdict: ``ok``, ``warn`` or ``fail``.
        value: what was measured (a number, a pair, a short text), JSON-serialisable.
        limit: what it was compared with (a number, ``[low, high]``, a text), or None.
        reason: one sentence in the user's terms: what was found and what it means for the result.
    """

    name: str
    verdict: Verdict
    value: Any = None
    limit: Any = None
    reason: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"check {self.name}: verdict {self.verdict!r} is not one of {VERDICTS}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "verdict": self.verdict,
            "value": _plain(self.value),
            "limit": _plain(self.limit),
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Check:
        return cls(
            str(data["name"]),
            data["verdict"],
            data.get("value"),
            data.get("limit"),
            str(data.get("reason", "")),
        )


@dataclass(frozen=True)
class QualityReport:
    """All checks of one prediction; its verdict is the worst of theirs."""

    checks: tuple[Check, ...] = field(default_factory=tuple)

    @property
    def verdict(self) -> Verdict:
        return worst(c.verdict for c in self.checks)

    @property
    def reason(self) -> str:
        """The first check with the report's verdict, as a sentence ('' when everything is ok)."""
        if self.verdict == "ok":
            return ""
        return next(c.reason for c in self.checks if c.verdict == self.verdict)

    def flagged(self) -> list[Check]:
        """Checks that are not ok, worst first (their order kept within a verdict)."""
        bad = [c for c in self.checks if c.verdict != "ok"]
        return sorted(bad, key=lambda c: -VERDICTS.index(c.verdict))

    def get(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)

    def __add__(self, other: QualityReport | Iterable[Check]) -> QualityReport:
        more = other.checks if isinstance(other, QualityReport) else tuple(other)
        return QualityReport((*self.checks, *more))

    def to_dict(self) -> dict[str, Any]:
        """The ``qc`` block of a case's record."""
        return {"verdict": self.verdict, "checks": [c.to_dict() for c in self.checks]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> QualityReport:
        return cls(tuple(Check.from_dict(c) for c in (data or {}).get("checks", ())))
