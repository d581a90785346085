"""napari-medswin: open studies, run a medswin model, inspect and save the prediction in napari.

An npe2 plugin (manifest ``napari.yaml``): readers for NIfTI/NRRD/MetaImage/DICOM, writers for
labels (NIfTI, DICOM-SEG), the CT phantom sample, and the Segment and Compare dock widgets. It is a
thin shell over :mod:`medswin` (``io``, ``inference.Predictor``, ``metrics``); ``medswin`` itself
never imports it, Qt or napari. Importing this package is cheap: torch loads when a model runs.
"""

from __future__ import annotations

import medswin.weights  # noqa: F401  (plugs published weights names into resolve_model)
from medswin import __version__

__all__ = ["__version__"]
