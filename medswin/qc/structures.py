"""What the checks measure on each structure of a label map, found once per prediction.

One pass of ``scipy.ndimage.find_objects`` gives every label's bounding box; each structure is
then measured inside its box only (a liver's box, not a 512x512x600 CT), so the checks cost a
fraction of the prediction even on large scans.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medswin.io.image import Image

__all__ = ["Structure", "measure_structures", "EDGE_NAMES"]

# direction in LPS -> the patient's name for the scan edge a face lies on
_LPS_EDGE = {
    (0, -1): "right",
    (0, 1): "left",
    (1, -1): "front",
    (1, 1): "back",
    (2, -1): "foot",
    (2, 1): "head",
}
#: names of the array faces, for a 2D image or when the direction says nothing clear
EDGE_NAMES = ("first", "last")


@dataclass(frozen=True)
class Structure:
    """One label's measurements on the input grid.

    Attributes:
        value / name: the label value and the card's name for it.
        voxels / volume_ml: its size (area in cm² for a 2D image).
        centroid_lps: its centre in LPS millimetres.
        piece_sizes: voxel counts of its connected pieces (26-connected in 3D), largest first.
        edge_cm2: scan edge (``"head"``, ``"left"`` ...) -> the area (cm²; cm for 2D) where it touches it.
    """

    value: int
    name: str
    voxels: int
    volume_ml: float
    centroid_lps: tuple[float, ...] | None
    piece_sizes: tuple[int, ...]
    edge_cm2: dict[str, float]


def _edge_name(image: Image, axis: int, high: bool) -> str:
    """The patient side an array face lies on (``"head"`` for the last plane of an LPS Z axis)."""
    column = image.direction[:, axis] * (1 if high else -1)
    strongest = int(np.argmax(np.abs(column)))
    if image.spatial_dims != 3 or abs(column[strongest]) < 0.7:
        return f"{EDGE_NAMES[int(high)]} plane of array axis {axis}"
    return _LPS_EDGE[(strongest, int(np.sign(column[strongest])))]


def _edges(image: Image, box: tuple[slice, ...], mask: np.ndarray) -> dict[str, float]:
    """Where the structure's mask (inside ``box``) touches the scan's faces, in cm² per face."""
    edges: dict[str, float] = {}
    dims = image.spatial_dims
    for axis in range(dims):
        others = [image.spacing[a] for a in range(dims) if a != axis]
        face_area = float(np.prod(others)) / (100.0 if dims == 3 else 10.0)  # mm² -> cm² (mm -> cm in 2D)
        for high in (False, True):
            at_face = box[axis].stop == image.shape[axis] if high else box[axis].start == 0
            if not at_face:
                continue
            plane = np.take(mask, -1 if high else 0, axis=axis)
            count = int(np.count_nonzero(plane))
            if count:
                name = _edge_name(image, axis, high)
                edges[name] = edges.get(name, 0.0) + count * face_area
    return edges


def measure_structures(labels: Image, names: dict[int, str]) -> dict[int, Structure]:
    """Every foreground label of ``names`` measured on ``labels`` (absent ones with 0 voxels)."""
    from scipy import ndimage

    array = np.asarray(labels.array[0])
    boxes = ndimage.find_objects(array) if array.size else []
    connectivity = ndimage.generate_binary_structure(array.ndim, array.ndim)
    unit = labels.voxel_volume_ml
    lps = labels.lps_affine
    found: dict[int, Structure] = {}
    for value, name in sorted(names.items()):
        if value == 0:
            continue
        box = boxes[value - 1] if 0 < value <= len(boxes) else None
        if box is None:
            found[value] = Structure(value, name, 0, 0.0, None, (), {})
            continue
        mask = array[box] == value
        voxels = int(np.count_nonzero(mask))
        where = np.nonzero(mask)
        index = np.array([where[a].mean() + box[a].start for a in range(array.ndim)])
        del where
        centroid = tuple(float(c) for c in (lps[:-1, :-1] @ index + lps[:-1, -1]))
        pieces, _ = ndimage.label(mask, structure=connectivity)
        sizes = np.bincount(pieces.ravel())[1:]
        found[value] = Structure(
            value,
            name,
            voxels,
            voxels * unit,
            centroid,
            tuple(int(s) for s in sorted(sizes, reverse=True)),
            _edges(labels, box, mask),
        )
    return found
