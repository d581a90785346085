"""Batch prediction: cases from folders, zips and lists; resumable, prefetching, sharded runs.

* :mod:`medswin.batch.cases` -- :func:`discover_cases` and :func:`read_case`;
* :mod:`medswin.batch.outputs` -- the files a finished case leaves, its record, and what medswin owns;
* :mod:`medswin.batch.folder` -- the output folder: no inputs in it, one run at a time, a work area;
* :mod:`medswin.batch.runner` -- :func:`run_batch` over one :class:`~medswin.inference.Predictor`;
* :mod:`medswin.batch.report` -- ``report.html``: every case of an output folder, worst verdict first.

``medswin predict`` and the challenge pipelines are thin shells over these.
"""

from __future__ import annotations

from medswin._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "medswin.batch.cases": ("Case", "discover_cases", "read_case"),
        "medswin.batch.folder": ("OutputLock", "check_output_folder"),
        "medswin.batch.outputs": ("finished_record", "write_case_outputs"),
        "medswin.batch.runner": (
            "BatchOptions",
            "BatchResult",
            "CaseOutcome",
            "run_batch",
            "shard_cases",
            "write_summary",
        ),
    },
)
