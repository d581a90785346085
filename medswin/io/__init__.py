"""Medical image I/O: the Image type, readers, writers, DICOM series handling, geometry helpers."""

from medswin.io.image import Image

__all__ = ["Image"]
