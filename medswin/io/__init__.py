"""Medical image I/O: the Image type, readers, writers, DICOM series handling, geometry helpers."""

from __future__ import annotations

from medswin._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "medswin.io.geometry": ("reorient", "resample_to_reference", "resample_to_spacing"),
        "medswin.io.image": ("Image",),
        "medswin.io.readers": ("SeriesInfo", "list_series", "read_image"),
        "medswin.io.writers": ("write_image", "write_labels"),
    },
)
