"""Clinical shape parameters from 3D label maps, in millimetres and degrees (patient LPS frame).

The parameters Swin-X2S reports (femur, pelvis, vertebra, rib), computed from a label
:class:`~medswin.io.image.Image` through its full affine, so anisotropic and oblique grids give
the same physical numbers. The official Swin-X2S morphometry works on meshes in voxel units of
its 128×128×160 grid (about 2.6 mm per voxel); our distances are in mm. Each result has an
``errors(reference)`` method giving the per-parameter differences used to compare a prediction
with its ground truth (absolute difference, point distance, or axis angle).
"""

from __future__ import annotations

from medswin.metrics.morphometry._geometry import LabelGeometry, fit_line, fit_sphere, label_geometry
from medswin.metrics.morphometry.femur import FemurMorphometry, femur_morphometry
from medswin.metrics.morphometry.pelvis import PelvisLandmarks, pelvis_landmarks
from medswin.metrics.morphometry.rib import RibCentreline, centreline_dice, rib_centreline
from medswin.metrics.morphometry.vertebra import VertebraMorphometry, vertebra_morphometry

__all__ = [
    "LabelGeometry",
    "label_geometry",
    "fit_sphere",
    "fit_line",
    "FemurMorphometry",
    "femur_morphometry",
    "VertebraMorphometry",
    "vertebra_morphometry",
    "RibCentreline",
    "rib_centreline",
    "centreline_dice",
    "PelvisLandmarks",
    "pelvis_landmarks",
]
