"""NIfTI and MetaImage label maps: the input's exact grid, the input's own NIfTI header reused."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from medswin.io.outputs.registry import LabelSet, OutputWriter, register_writer


def _write_volume(labels: LabelSet, targets: Mapping[int, Path]) -> list[Path]:
    from medswin.io.writers import write_labels

    return [write_labels(labels.labels, targets[0], reference=labels.source)]


NIFTI = register_writer(OutputWriter("nifti", ".nii.gz", "NIfTI", _write_volume))
MHA = register_writer(OutputWriter("mha", ".mha", "MetaImage", _write_volume))
