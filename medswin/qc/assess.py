"""The one entry every volume prediction goes through: every check, in the order a reader wants them.

:class:`~medswin.inference.Predictor` calls :func:`assess_volume` at the end of ``predict()``, so the
CLI, batches, napari and the Python API all record the same verdict. It reads the prediction,
never changes it.
"""

from __future__ import annotations

from collections.abc import Mapping

from medswin.io.image import Image
from medswin.models.card import ModelCard
from medswin.qc.confidence import agreement_checks, confidence_checks
from medswin.qc.core import QualityReport
from medswin.qc.fit import fit_checks
from medswin.qc.plausibility import plausibility_checks
from medswin.qc.sides import side_checks
from medswin.qc.structures import measure_structures

__all__ = ["assess_volume"]


def assess_volume(
    image: Image,
    labels: Image,
    card: ModelCard,
    *,
    confidence: Mapping[int, float] | None = None,
    agreement: Mapping[int, float] | None = None,
) -> QualityReport:
    """The quality report of one prediction.

    Args:
        image: the input, as given to the predictor (its geometry and metadata).
        labels: the predicted label map on the input's grid (after post-processing).
        card: the model card (labels, modality, spacing, volume ranges).
        confidence: label value -> mean top-class probability (:class:`~medswin.qc.confidence.ConfidenceGatherer`).
        agreement: label value -> Dice between flipped and plain passes (test-time augmentation).

    Returns:
        checks in the order fit, sides, volume / pieces / edge, confidence, agreement.
    """
    structures = measure_structures(labels, card.label_names())
    checks = [
        *fit_checks(image, card),
        *side_checks(image, structures, card),
        *plausibility_checks(structures, card, volumes=labels.spatial_dims == 3),
        *confidence_checks(card, dict(confidence or {})),
        *agreement_checks(card, dict(agreement or {})),
    ]
    return QualityReport(tuple(checks))
