"""Quality control after a prediction: checks, and the verdict every front end shows and records."""

from medswin.qc.core import VERDICTS, Check, QualityReport, Verdict, worst

__all__ = ["VERDICTS", "Check", "QualityReport", "Verdict", "worst", "assess_volume"]


def __getattr__(name: str) -> object:
    if name == "assess_volume":  # imported on use: the checks pull in scipy and the fit module
        from medswin.qc.assess import assess_volume

        return assess_volume
    raise AttributeError(f"module 'medswin.qc' has no attribute {name!r}")
