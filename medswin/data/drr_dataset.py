"""Biplanar training data: CT cases with labels -> DRR pairs and label volumes on the model grid.

What the Swin-X2S preprocessing does with its ITK programs, written as a dataset folder that
``medswin train`` reads directly::

    OUT/imagesTr/<case>_0000.mha   AP DRR, 2D (X, Z), values 0..1, detector pixel size as spacing: with
                                   the official values the program's whole DRR (k/255, columns x rows),
                                   else medswin's view already cropped to the model's (X, Z)
    OUT/imagesTr/<case>_0001.mha   lateral DRR, 2D (Y, Z)
    OUT/labelsTr/<case>.nii.gz     labels on the output grid (roi voxels, axes LPI), centred on the
                                   isocentre like a prediction from radiographs (the CT position of
                                   that centre is the case's ``isocentre_lps_mm`` in datalist.json)
    OUT/dataset.json               channels AP / lateral, the label map, the DRR geometry (with
                                   ``values``: official or full_precision, and ``frame``: handedness)
    OUT/datalist.json              the cases with cross-validation folds

A case that cannot be made (unreadable CT, label off the CT's grid) is reported and skipped; the
others are written. Every file is written atomically.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medswin.errors import MedSwinError
from medswin.io.image import Image
from medswin.transforms.drr import DrrGeometry, biplanar_drr

__all__ = ["DrrDatasetResult", "drr_case_files", "write_drr_dataset"]

log = logging.getLogger(__name__)

#: ``(case id, loader)``; the loader returns ``(CT in HU, labels on the CT grid)``.
CaseSource = tuple[str, Callable[[], tuple[Image, Image]]]


@dataclass
class DrrDatasetResult:
    """Cases written and cases refused (case id -> reason)."""

    folder: Path
    written: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def _grid_centre(grid: Image) -> list[float]:
    """LPS position (mm) of the model grid's centre: where a radiograph-frame label's (0, 0, 0) lies in the CT."""
    middle = (np.asarray(grid.shape, dtype=np.float64) - 1.0) / 2.0
    return [round(float(c), 4) for c in (grid.lps_affine @ np.append(middle, 1.0))[:3]]


def drr_case_files(folder: Path, case: str) -> tuple[Path, Path, Path]:
    """``(AP, lateral, label)`` paths of one case in a DRR dataset folder."""
    return (
        folder / "imagesTr" / f"{case}_0000.mha",
        folder / "imagesTr" / f"{case}_0001.mha",
        folder / "labelsTr" / f"{case}.nii.gz",
    )


def write_drr_dataset(
    cases: Iterable[CaseSource],
    folder: str | Path,
    labels: Mapping[int, str] | None,
    *,
    geometry: DrrGeometry | None = None,
    folds: int = 5,
    seed: int = 0,
    info: Mapping[str, Any] | None = None,
) -> DrrDatasetResult:
    """Write the DRR pair and model-grid labels of every case (see the module docstring).

    Args:
        cases: ``(case id, loader)`` pairs; loaders run one at a time, so only one CT is in memory.
        folder: output dataset folder (created).
        labels: label value -> name, including ``0: "background"`` (written to dataset.json);
            ``None`` names the values found ``label_<value>``.
        geometry: DRR settings (default: the official 160-voxel cube, 128 × 128 × 160 output).
        folds: cross-validation folds of the datalist (0 or 1: no folds).
        seed: seed of the fold assignment.
        info: extra dataset.json fields (name, description, licence, source).
    """
    from medswin.data.builder import assign_folds
    from medswin.data.manifest import write_json
    from medswin.io.writers import write_image
    from medswin.transforms.radiograph import in_radiograph_frame

    geometry = geometry or DrrGeometry()
    geometry.check()
    folder = Path(folder)
    result = DrrDatasetResult(folder)
    found: set[int] = {0}
    isocentres: dict[str, list[float]] = {}
    for case, load in cases:
        try:
            ct, label = load()
            drr = biplanar_drr(ct, label, geometry)
        except MedSwinError as error:
            log.error("case %s: %s", case, error)
            result.failed[case] = str(error)
            continue
        ap_path, lateral_path, label_path = drr_case_files(folder, case)
        write_image(drr.ap, ap_path)
        write_image(drr.lateral, lateral_path)
        write_image(in_radiograph_frame(drr.labels), label_path)  # type: ignore[arg-type]
        isocentres[case] = _grid_centre(drr.grid)
        found.update(int(v) for v in np.unique(drr.labels.array))  # type: ignore[union-attr]
        result.written.append(case)
    if not result.written:
        raise MedSwinError(f"{folder}: no case could be made into DRRs ({len(result.failed)} failed)")
    if labels is None:
        labels = {v: "background" if v == 0 else f"label_{v}" for v in sorted(found)}
    label_names = {str(k): v for k, v in sorted(labels.items())}
    write_json(
        folder / "dataset.json",
        {
            "name": "DRR pairs",
            "description": "AP and lateral DRRs of CT cases (medswin.transforms.drr) with labels on the Swin-X2S output grid",
            **dict(info or {}),
            "tensorImageSize": "3D",
            "modality": {"0": "AP", "1": "lateral"},
            "labels": label_names,
            "numTraining": len(result.written),
            "file_ending": ".mha",
            "drr_geometry": asdict(geometry),
        },
    )
    assigned = assign_folds(result.written, folds, seed) if folds > 1 else {}
    training = []
    for case in result.written:
        ap_path, lateral_path, label_path = drr_case_files(Path("."), case)
        entry: dict[str, Any] = {
            "case": case,
            "image": [ap_path.as_posix(), lateral_path.as_posix()],
            "label": label_path.as_posix(),
            "isocentre_lps_mm": isocentres[case],
        }
        if case in assigned:
            entry["fold"] = assigned[case]
        training.append(entry)
    write_json(
        folder / "datalist.json",
        {
            "name": str((info or {}).get("name", "DRR pairs")),
            "channels": ["AP", "lateral"],
            "labels": label_names,
            "training": training,
        },
    )
    return result
