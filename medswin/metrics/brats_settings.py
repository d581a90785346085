"""The BraTS label names, regions and the official lesion-wise settings, as plain data.

Kept apart from :mod:`medswin.metrics.brats` (which needs SciPy) so that ``medswin evaluate --help``
can list the editions without loading the numerical stack.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["BRATS_LABELS", "BRATS_PENALTY_MM", "BRATS_REGIONS", "LESION_WISE_SETTINGS", "LesionWiseSettings"]

#: BraTS 2023/2024 label values and names (2024 GLI adds RC).
BRATS_LABELS: dict[int, str] = {1: "NETC", 2: "SNFH", 3: "ET", 4: "RC"}

#: evaluated regions: name -> label values.
BRATS_REGIONS: dict[str, tuple[int, ...]] = {"WT": (1, 2, 3), "TC": (1, 3), "ET": (3,), "RC": (4,)}

#: HD95 (mm) the BraTS evaluation gives a missed or false-positive lesion, and an empty region.
BRATS_PENALTY_MM = 374.0


@dataclass(frozen=True)
class LesionWiseSettings:
    """Parameters of the lesion-wise evaluation.

    Attributes:
        dilation_iterations: times the reference is dilated (18-connected element) to merge nearby
            lesions and to match predictions; 0 disables dilation.
        volume_threshold_mm3: reference lesions of at most this volume are not counted.
        region_thresholds_mm3: per-region overrides of the threshold (e.g. BraTS 2024 ET: 10).
        penalty_mm: HD95 of a missed or false-positive lesion.
    """

    dilation_iterations: int = 3
    volume_threshold_mm3: float = 50.0
    region_thresholds_mm3: Mapping[str, float] = field(default_factory=dict)
    penalty_mm: float = BRATS_PENALTY_MM

    def threshold_for(self, region: str) -> float:
        return float(self.region_thresholds_mm3.get(region, self.volume_threshold_mm3))


#: Settings of the official evaluation scripts, by challenge (sources: :mod:`medswin.metrics.brats`).
LESION_WISE_SETTINGS: dict[str, LesionWiseSettings] = {
    "BraTS-GLI-2023": LesionWiseSettings(3, 50.0),
    "BraTS-SSA-2023": LesionWiseSettings(3, 50.0),
    "BraTS-PED-2023": LesionWiseSettings(3, 50.0),
    "BraTS-MEN-2023": LesionWiseSettings(1, 50.0),
    "BraTS-MET-2023": LesionWiseSettings(1, 2.0),
    "BraTS-GLI-2024": LesionWiseSettings(3, 20.0, {"ET": 10.0, "RC": 10.0}),
}
