"""Medical image I/O: the Image type, readers, writers, DICOM series handling, geometry helpers."""

from medswin.io.geometry import reorient, resample_to_reference, resample_to_spacing
from medswin.io.image import Image
from medswin.io.readers import SeriesInfo, list_series, read_image
from medswin.io.writers import write_image, write_labels

__all__ = [
    "Image",
    "SeriesInfo",
    "read_image",
    "write_image",
    "write_labels",
    "list_series",
    "reorient",
    "resample_to_spacing",
    "resample_to_reference",
]
