"""Batch prediction: cases from folders, zips and lists; resumable, prefetching, sharded runs.

* :mod:`medswin.batch.cases` -- :func:`discover_cases` and :func:`read_case`;
* :mod:`medswin.batch.outputs` -- the files a finished case leaves, and its finished marker;
* :mod:`medswin.batch.runner` -- :func:`run_batch` over one :class:`~medswin.inference.Predictor`.

``medswin predict`` and the challenge pipelines are thin shells over these.
"""

from medswin.batch.cases import Case, case_name, discover_cases, read_case
from medswin.batch.outputs import OUTPUT_FORMATS, finished_record, write_case_outputs
from medswin.batch.runner import BatchOptions, BatchResult, CaseOutcome, run_batch, shard_cases, write_summary

__all__ = [
    "Case",
    "case_name",
    "discover_cases",
    "read_case",
    "OUTPUT_FORMATS",
    "finished_record",
    "write_case_outputs",
    "BatchOptions",
    "BatchResult",
    "CaseOutcome",
    "run_batch",
    "shard_cases",
    "write_summary",
]
