"""Anatomically true views in a real (shown) viewer: checked from rendered pixels, not camera values.

The CT phantom's liver (patient's right, upper abdomen) and left kidney (patient's left, lower)
must show the liver left of and above the kidney in the anterior head-up 3D view napari_medswin sets
when switching to 3D, and the liver on the screen's left in 2D axial slices (radiological
convention); the edge letters say so. napari's own default camera draws the same layer mirrored, which the first check proves.
"""

from __future__ import annotations

import numpy as np
import pytest
from napari_medswin import _orientation
from napari_medswin._layers import image_to_layer_data
from qtpy.QtWidgets import QApplication

from medswin.data.phantom import make_ct_phantom

pytestmark = [pytest.mark.napari, pytest.mark.slow]  # a shown viewer: about 35 s


def _pump() -> None:
    for _ in range(10):
        QApplication.processEvents()


def blob_position(viewer, layer, label: int = 1) -> tuple[float, float]:
    """Where ``label``'s colour is on the rendered canvas: (x, y) as fractions of its width and height."""
    _pump()
    shot = viewer.screenshot(canvas_only=True)[..., :3].astype(int)
    colour = np.asarray(layer.colormap.color_dict[label][:3], float)
    # 3D shading darkens a label's colour, not its hue: compare directions in RGB space
    brightness = np.linalg.norm(shot, axis=-1)
    cosine = (shot @ colour) / np.maximum(brightness * np.linalg.norm(colour), 1e-9)
    ys, xs = np.nonzero((cosine > 0.97) & (brightness > 40))
    assert xs.size > 50, "the label is not visible on the canvas"
    return float(xs.mean() / shot.shape[1]), float(ys.mean() / shot.shape[0])


def test_3d_view_is_the_patient_seen_from_the_front_and_2d_stays_radiological(make_napari_viewer):
    # oblique: napari applies the layer's rotate in 3D, and the film of a tilted grid must still read true
    case = make_ct_phantom(shape=(40, 36, 32), spacing=(3.0, 3.0, 4.0), orientation="oblique", seed=3)
    array = np.asarray(case.labels.array)
    organs = case.labels.with_array(np.where(np.isin(array, (1, 4)), array, 0).astype(np.uint8))
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(900, 700)
    # names medswin.io.anatomy does not colour, so the two organs get hues far apart (red, blue)
    names, colours = {1: "organ 1", 4: "organ 4"}, {1: (255, 0, 0), 4: (0, 0, 255)}
    data, kwargs, _ = image_to_layer_data(organs, "organs", label_names=names, colors=colours)
    layer = viewer.add_labels(data, **kwargs)
    layer.opacity = 1.0

    # napari's default camera, from the front and head up: the liver on the screen's right, a mirror image
    viewer.dims.ndisplay = 3
    viewer.camera.set_view_direction(view_direction=(0, 1, 0), up_direction=(1, 0, 0))
    assert blob_position(viewer, layer, 1)[0] > blob_position(viewer, layer, 4)[0]

    _orientation.install(viewer)  # what medswin's reader and widgets do
    viewer.dims.ndisplay = 2
    viewer.reset_view()  # the body in the middle of the canvas
    viewer.dims.set_point(0, _world_centroid(layer, 1)[0])  # the axial slice through the liver
    liver_x = blob_position(viewer, layer, 1)[0]
    viewer.dims.set_point(0, _world_centroid(layer, 4)[0])  # and through the left kidney
    assert liver_x < blob_position(viewer, layer, 4)[0]  # axial: the patient's right on the screen's left
    assert _orientation.edge_letters(viewer) == {"top": "A", "bottom": "P", "left": "R", "right": "L"}
    assert viewer.canvas.overlays["medswin_orientation_left"].text == "R"

    viewer.dims.ndisplay = 3  # switching to 3D gives the anterior, head-up view
    (liver_x, liver_y), (kidney_x, kidney_y) = (
        blob_position(viewer, layer, 1),
        blob_position(viewer, layer, 4),
    )
    assert liver_x < kidney_x  # the patient's right on the screen's left
    assert liver_y < kidney_y  # the head up
    assert _orientation.edge_letters(viewer) == {"top": "S", "bottom": "I", "left": "R", "right": "L"}
    viewer.camera.orientation = ("towards", "down", "right")  # napari's default comes back: refused
    assert blob_position(viewer, layer, 1)[0] < blob_position(viewer, layer, 4)[0]

    # another rotation: the letters' screen directions agree with where the organs are drawn
    viewer.camera.set_view_direction(view_direction=(-0.3, 0.2, 1.0), up_direction=(1.0, 0.2, 0.0))
    right, up = _orientation.screen_directions(viewer.camera, 3)
    step = _world_centroid(layer, 4) - _world_centroid(layer, 1)  # liver -> kidney, world mm
    (liver_x, liver_y), (kidney_x, kidney_y) = (
        blob_position(viewer, layer, 1),
        blob_position(viewer, layer, 4),
    )
    assert min(abs(kidney_x - liver_x), abs(kidney_y - liver_y)) > 0.02  # apart on screen
    assert np.sign(kidney_x - liver_x) == np.sign(step @ right)
    assert np.sign(liver_y - kidney_y) == np.sign(step @ up)  # screen y runs down
    assert viewer.canvas.overlays["medswin_orientation_top"].text == _orientation.edge_letters(viewer)["top"]

    layer.visible = False  # nothing in patient space on screen: no letters
    assert not viewer.canvas.overlays["medswin_orientation_top"].visible


def _world_centroid(layer, label: int) -> np.ndarray:
    return np.asarray(layer.data_to_world(np.argwhere(np.asarray(layer.data) == label).mean(axis=0)))
