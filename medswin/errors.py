"""Error types. Each message names the file or value, the rule it broke and what to do."""

from __future__ import annotations

__all__ = [
    "MedSwinError",
    "ImageReadError",
    "ImageWriteError",
    "GeometryError",
    "CheckpointError",
    "WeightsError",
    "ModelCardError",
    "ManifestError",
    "MetricInputError",
    "CancelledError",
    "PacsError",
    "ExportError",
]


class MedSwinError(Exception):
    """Base class of every error medswin raises on purpose (the CLI prints these without a traceback)."""


class ImageReadError(MedSwinError):
    """A file or folder could not be read as a medical image."""


class ImageWriteError(MedSwinError):
    """An output (an image, a table, a record) could not be written (:mod:`medswin.files`)."""


class GeometryError(MedSwinError):
    """Spacing, origin or direction are invalid or do not match where they must."""


class CheckpointError(MedSwinError):
    """A checkpoint is unreadable, unsafe, or does not match its model card."""


class WeightsError(CheckpointError):
    """Published weights could not be fetched, verified or found in the cache."""


class ModelCardError(MedSwinError):
    """A model card is invalid or names an unknown model."""


class ManifestError(MedSwinError):
    """A data manifest or pipeline recipe is invalid."""


class MetricInputError(MedSwinError):
    """Inputs to a metric are inconsistent (shape, spacing, labels)."""


class CancelledError(MedSwinError):
    """A long operation was cancelled by its caller."""


class PacsError(MedSwinError):
    """A PACS (DICOMweb or DIMSE node) refused, failed or could not be reached; the message names the node."""


class ExportError(MedSwinError):
    """A network could not be exported or run by another runtime (ONNX Runtime, OpenVINO, TorchScript)."""
