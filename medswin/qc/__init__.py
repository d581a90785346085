"""Quality control after a prediction: checks, and the verdict every front end shows and records."""

from medswin.qc.core import VERDICTS, Check, QualityReport, Verdict, worst

__all__ = ["VERDICTS", "Check", "QualityReport", "Verdict", "worst"]
