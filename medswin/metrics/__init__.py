"""Clinical segmentation metrics: overlap, surface distance (mm), volume (mL), BraTS lesion-wise.

Pure functions on NumPy arrays plus voxel spacing (anisotropic spacing honoured everywhere), with
an explicit empty-mask policy (never a silent NaN) and surface definitions equal to MONAI 1.6.1's
``compute_hausdorff_distance``, ``compute_average_surface_distance(symmetric=True)`` and
``compute_surface_dice``. :func:`label_metrics` computes all of them for every label of a label map
at once; :func:`evaluate_case` and :func:`summarize` work on :class:`~medswin.io.image.Image` pairs.
"""

from __future__ import annotations

from medswin._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "medswin.metrics._checks": ("EmptyKind", "image_diagonal_mm"),
        "medswin.metrics.brats": (
            "BRATS_LABELS",
            "BRATS_PENALTY_MM",
            "BRATS_REGIONS",
            "LESION_WISE_SETTINGS",
            "BratsRegionMetrics",
            "Lesion",
            "LesionWiseResult",
            "LesionWiseSettings",
            "brats_metrics",
            "brats_regions",
            "lesion_wise_metrics",
            "region_mask",
        ),
        "medswin.metrics.evaluate": (
            "BRATS_COLUMNS",
            "CaseResult",
            "evaluate_case",
            "summarize",
            "with_every_label",
        ),
        "medswin.metrics.multilabel": ("METRIC_COLUMNS", "LabelMetrics", "binary_metrics", "label_metrics"),
        "medswin.metrics.overlap": (
            "OverlapCounts",
            "dice",
            "iou",
            "precision",
            "sensitivity",
            "structure_dice",
            "volume_ml",
            "voxel_volume_ml",
        ),
        "medswin.metrics.report": (
            "CSV_COLUMNS",
            "summary_path_for",
            "write_metrics_csv",
            "write_summary_json",
        ),
        "medswin.metrics.surface": (
            "SurfaceDistances",
            "average_symmetric_surface_distance",
            "hausdorff95",
            "hausdorff_distance",
            "mask_edges",
            "mean_surface_distance",
            "normalized_surface_dice",
            "surface_distances",
        ),
        "medswin.metrics.surfels": ("SurfelDistances", "robust_hausdorff", "surfel_distances"),
    },
)
