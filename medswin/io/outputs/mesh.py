"""Surface meshes: one binary STL per label present, in patient LPS millimetres, for 3D printing and planning.

Each label is cut to its bounding box with a one-voxel margin of background, so marching cubes
(scikit-image) closes the surface wherever the label touches the volume's edge: every mesh is
watertight. Vertices go from voxel indices to patient LPS mm through the image's own geometry
(oblique directions and anisotropic spacing included), faces are wound outwards, and a Taubin
filter (trimesh; it smooths the voxel steps without shrinking the volume as plain Laplacian
smoothing does) takes out the staircase. The 80-byte STL header says ``SPACE=LPS`` and ``mm``
(the convention 3D Slicer reads and writes); no patient or case name goes into it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from medswin.io.outputs.registry import LabelSet, OutputWriter, register_writer

__all__ = ["MESH", "label_mesh", "SMOOTHING_ITERATIONS"]

#: Taubin passes (lambda 0.5, nu 0.53): enough to remove the voxel staircase of a 1-3 mm grid.
SMOOTHING_ITERATIONS = 10


def label_mesh(mask: Any, lps_affine: Any, *, smooth: bool = True) -> Any:
    """The closed surface of a boolean ``(X, Y, Z)`` mask as a ``trimesh.Trimesh`` in the mm of ``lps_affine``."""
    import numpy as np
    import trimesh
    from skimage.measure import marching_cubes

    padded = np.pad(np.asarray(mask, dtype=np.float32), 1)  # background all round: closed surfaces
    # Lorensen's cases: Lewiner's disambiguation left open edges on speckled labels (a model's noise)
    vertices, faces, _, _ = marching_cubes(padded, level=0.5, method="lorensen", allow_degenerate=False)
    vertices -= 1.0  # padding undone: voxel indices of the mask
    affine = np.asarray(lps_affine, dtype=np.float64)
    points = vertices @ affine[:3, :3].T + affine[:3, 3]
    if np.linalg.det(affine[:3, :3]) < 0:  # a mirroring grid turns the winding inside out
        faces = faces[:, ::-1]
    mesh = trimesh.Trimesh(points, faces, process=True)
    if mesh.volume < 0:  # marching cubes winds by its gradient convention: make normals point out
        mesh.invert()
    if smooth:
        trimesh.smoothing.filter_taubin(mesh, lamb=0.5, nu=0.53, iterations=SMOOTHING_ITERATIONS)
    return mesh


def _write_meshes(labels: LabelSet, targets: Mapping[int, Path]) -> list[Path]:
    import numpy as np
    from scipy import ndimage

    from medswin.errors import ImageWriteError
    from medswin.io.writers import atomic_output

    image = labels.labels
    if image.spatial_dims != 3:
        raise ImageWriteError(
            f"{next(iter(targets.values()))}: surface meshes are made of 3D label maps only"
        )
    array = np.asarray(image.array[0])
    values = [v for v in targets if v != 0]
    boxes = ndimage.find_objects(np.where(np.isin(array, values), array, 0).astype(np.int64))
    written = []
    for value in values:
        box = boxes[value - 1] if value - 1 < len(boxes) else None
        if box is None:  # label absent: no file
            continue
        offset = np.eye(4)
        offset[:3, 3] = [s.start for s in box]
        mesh = label_mesh(array[box] == value, image.lps_affine @ offset)
        header = f"medswin surface {labels.names[value]} SPACE=LPS units=mm".encode("ascii", "replace")
        data = mesh.export(file_type="stl")  # binary STL: 80-byte header, count, triangles
        with atomic_output(targets[value]) as temporary:
            temporary.write_bytes(header[:80].ljust(80, b" ") + data[80:])
        written.append(targets[value])
    return written


MESH = register_writer(OutputWriter("mesh", "_mesh_{label}.stl", "surface meshes (STL)", _write_meshes))
