"""Batch prediction: cases from folders, zips and lists; resumable, prefetching, sharded runs.

* :mod:`medswin.batch.cases` -- :func:`discover_cases` and :func:`read_case`;
* :mod:`medswin.batch.outputs` -- the files a finished case leaves, its record, and what medswin owns;
* :mod:`medswin.batch.folder` -- the output folder: no inputs in it, one run at a time, a work area;
* :mod:`medswin.batch.runner` -- :func:`run_batch` over one :class:`~medswin.inference.Predictor`.

``medswin predict`` and the challenge pipelines are thin shells over these.
"""

from medswin.batch.cases import Case, case_name, discover_cases, read_case
from medswin.batch.folder import OutputLock, check_output_folder
from medswin.batch.outputs import OUTPUT_FORMATS, finished_record, write_case_outputs
from medswin.batch.runner import BatchOptions, BatchResult, CaseOutcome, run_batch, shard_cases, write_summary

__all__ = [
    "Case",
    "case_name",
    "discover_cases",
    "read_case",
    "OutputLock",
    "check_output_folder",
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
