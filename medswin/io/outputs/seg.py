"""DICOM-SEG (:mod:`medswin.io.dicom_seg`): one BINARY segmentation object referencing the source series."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from medswin.io.outputs.registry import LabelSet, OutputWriter, register_writer


def _write_seg(labels: LabelSet, targets: Mapping[int, Path]) -> list[Path]:
    from medswin.io.dicom_seg import write_dicom_seg

    assert labels.source is not None  # checked by OutputWriter.write (dicom_source_problem)
    return [
        write_dicom_seg(
            labels.labels,
            labels.source,
            targets[0],
            labels.names,
            labels.colors,
            algorithm_name=labels.algorithm,
            series_description=labels.series_description,
            content_description=labels.content_description,
            deidentify_key=labels.deidentify_key,
        )
    ]


DICOM_SEG = register_writer(
    OutputWriter("dicom-seg", ".dcm", "DICOM-SEG", _write_seg, needs_dicom_source=True, sendable=True)
)
