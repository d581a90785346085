"""Label output writers, one module each, found by name in :data:`WRITERS` (see :mod:`.registry`).

Adding a writer: a module here that calls :func:`register_writer`, its import below, and (for
napari's save dialog) an entry in ``plugins/napari_medswin/napari.yaml``; docs/architecture.md
has a worked example.
"""

from __future__ import annotations

from medswin.io.outputs.registry import (
    WRITERS,
    LabelSet,
    OutputWriter,
    dicom_source_problem,
    register_writer,
    safe_name,
)

# each import registers its writers, in the order --output-format lists them
from medswin.io.outputs import volume, seg, rtstruct, mesh  # noqa: E402,F401  isort: skip

__all__ = ["WRITERS", "LabelSet", "OutputWriter", "dicom_source_problem", "register_writer", "safe_name"]
