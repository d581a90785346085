"""Surface meshes (``--output-format mesh``): closed, in patient LPS mm, where the label is."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from medswin.data.phantom import PHANTOM_LABELS, make_ct_phantom
from medswin.io.outputs import WRITERS, LabelSet

NAMES = {value: name for value, (name, _) in PHANTOM_LABELS.items()}


def _voxel_facts(labels, value):
    """(volume in mm³, LPS centroid in mm) of one label's voxels."""
    index = np.argwhere(np.asarray(labels.array[0]) == value)
    centres = (labels.lps_affine @ np.c_[index, np.ones(len(index))].T)[:3].T
    return len(index) * float(np.prod(labels.spacing)), centres.mean(axis=0)


@pytest.mark.parametrize("orientation", ["oblique", "RAS"])
def test_meshes_are_closed_surfaces_on_the_labels_in_patient_lps_mm(tmp_path, orientation):
    case = make_ct_phantom(shape=(40, 36, 16), spacing=(1.1, 0.9, 2.5), orientation=orientation, seed=3)
    labels = case.labels
    array = np.asarray(labels.array[0])
    array[array == 2] = 0  # a card label absent from this case: no file for it
    labels = labels.with_array(array[None])
    written = WRITERS["mesh"].write(LabelSet(labels, case.image, NAMES), tmp_path, "c1")

    assert [p.name for p in written] == [f"c1_mesh_{NAMES[v]}.stl" for v in (1, 3, 4, 5)]
    for path, value in zip(written, (1, 3, 4, 5), strict=True):
        header = path.read_bytes()[:80]
        assert b"SPACE=LPS" in header and b"units=mm" in header and not header.startswith(b"solid")
        mesh = trimesh.load(path)
        assert mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0
        volume, centroid = _voxel_facts(labels, value)
        # marching cubes cuts voxel corners: small, thin structures lose most, the liver least
        assert mesh.volume == pytest.approx(volume, rel=0.05 if value == 1 else 0.2)
        assert np.linalg.norm(mesh.center_mass - centroid) < 0.5  # mm, on oblique 1.1 x 0.9 x 2.5 voxels
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written)  # no temporaries


def test_a_label_touching_the_volume_edge_is_still_closed(tmp_path):
    case = make_ct_phantom(shape=(20, 18, 8), spacing=(1.5, 1.5, 3.0), orientation="oblique", seed=1)
    block = np.zeros(case.labels.shape, dtype=np.uint8)
    block[:6, 4:12, :] = 1  # runs through the first and last slices and the first column
    labels = case.labels.with_array(block[None])
    (path,) = WRITERS["mesh"].write(LabelSet(labels, case.image, {1: "liver"}), tmp_path, "edge")
    mesh = trimesh.load(path)
    volume, centroid = _voxel_facts(labels, 1)
    assert mesh.is_watertight
    assert mesh.volume == pytest.approx(volume, rel=0.05)
    assert np.linalg.norm(mesh.center_mass - centroid) < 0.5
