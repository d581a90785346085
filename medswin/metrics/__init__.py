"""Clinical segmentation metrics: overlap, surface distance (mm), volume (mL), BraTS lesion-wise.

Pure functions on NumPy arrays plus voxel spacing (anisotropic spacing honoured everywhere), with
an explicit empty-mask policy (never a silent NaN) and surface definitions equal to MONAI 1.6.1's
``compute_hausdorff_distance``, ``compute_average_surface_distance(symmetric=True)`` and
``compute_surface_dice``. :func:`label_metrics` computes all of them for every label of a label map
at once; :func:`evaluate_case` and :func:`summarize` work on :class:`~medswin.io.image.Image` pairs.
"""

from __future__ import annotations

from medswin.metrics._checks import EmptyKind, image_diagonal_mm
from medswin.metrics.brats import (
    BRATS_LABELS,
    BRATS_PENALTY_MM,
    BRATS_REGIONS,
    LESION_WISE_SETTINGS,
    BratsRegionMetrics,
    Lesion,
    LesionWiseResult,
    LesionWiseSettings,
    brats_metrics,
    brats_regions,
    lesion_wise_metrics,
    region_mask,
)
from medswin.metrics.evaluate import BRATS_COLUMNS, CaseResult, evaluate_case, summarize
from medswin.metrics.multilabel import METRIC_COLUMNS, LabelMetrics, binary_metrics, label_metrics
from medswin.metrics.overlap import (
    OverlapCounts,
    dice,
    iou,
    precision,
    sensitivity,
    volume_ml,
    voxel_volume_ml,
)
from medswin.metrics.report import CSV_COLUMNS, summary_path_for, write_metrics_csv, write_summary_json
from medswin.metrics.surface import (
    SurfaceDistances,
    average_symmetric_surface_distance,
    hausdorff95,
    hausdorff_distance,
    mask_edges,
    mean_surface_distance,
    normalized_surface_dice,
    surface_distances,
)
from medswin.metrics.surfels import SurfelDistances, robust_hausdorff, surfel_distances

__all__ = [
    "BRATS_COLUMNS",
    "BRATS_LABELS",
    "BRATS_PENALTY_MM",
    "BRATS_REGIONS",
    "CSV_COLUMNS",
    "LESION_WISE_SETTINGS",
    "METRIC_COLUMNS",
    "BratsRegionMetrics",
    "CaseResult",
    "EmptyKind",
    "LabelMetrics",
    "Lesion",
    "LesionWiseResult",
    "LesionWiseSettings",
    "OverlapCounts",
    "SurfaceDistances",
    "SurfelDistances",
    "average_symmetric_surface_distance",
    "binary_metrics",
    "brats_metrics",
    "brats_regions",
    "dice",
    "evaluate_case",
    "hausdorff95",
    "hausdorff_distance",
    "image_diagonal_mm",
    "iou",
    "label_metrics",
    "lesion_wise_metrics",
    "mask_edges",
    "mean_surface_distance",
    "normalized_surface_dice",
    "precision",
    "region_mask",
    "robust_hausdorff",
    "sensitivity",
    "summarize",
    "summary_path_for",
    "surface_distances",
    "surfel_distances",
    "volume_ml",
    "voxel_volume_ml",
    "write_metrics_csv",
    "write_summary_json",
]
