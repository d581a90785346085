"""Anatomically true views: the 3D camera's handedness, an anterior head-up 3D view, and R/L A/P S/I markers.

medswin lays every layer out in the patient's LPS frame, in napari's reversed world order
``(z, y, x)`` = (superior, posterior, left) (see :mod:`napari_medswin._layers`). napari's default
camera (``("towards", "down", "right")``, right-handed for napari) draws that frame **mirrored**
in 3D: seen from the front, the patient's right lands on the screen's right. A left-handed camera
(depth ``"away"`` with the default 2D axes) draws it as it is; the 2D axes (``orientation[1:]``) are
not touched, so 2D slices keep the radiological convention (patient's right on the screen's left).

:func:`install` does this once per viewer (medswin's reader, sample data and widgets call it):
it keeps the camera left-handed, turns every switch to 3D into an anterior head-up view, and shows
orientation letters on the four canvas edges, recomputed from the camera and the displayed axes
whenever either changes. The letters are derived, never assumed: each screen direction (up, right)
is expressed in world axes, and each world axis of a medswin layer has its anatomical meaning.
"""

from __future__ import annotations

import logging
import weakref
from typing import Any

import numpy as np

__all__ = [
    "EDGES",
    "anatomical_orientation",
    "anterior_view",
    "edge_letters",
    "install",
    "screen_directions",
    "world_axis_letters",
]

log = logging.getLogger(__name__)

#: (increasing, decreasing) letter of each of medswin's world axes (z, y, x) = (S, P, L)
_AXIS_LETTERS: tuple[tuple[str, str], ...] = (("S", "I"), ("P", "A"), ("L", "R"))
#: canvas edge -> napari CanvasPosition of its marker
EDGES: dict[str, str] = {
    "top": "top_center",
    "bottom": "bottom_center",
    "left": "middle_left",
    "right": "middle_right",
}
_OVERLAY_KEY = "medswin_orientation_{}"
# a world axis also names an edge when it makes at least this share of the edge's direction
# (sin 22.5°: an oblique view between two axes says both, e.g. "RA")
_SECOND_LETTER = 0.383
# id(viewer) -> its guard, dropped when the viewer is collected
_guards: dict[int, Any] = {}


def anatomical_orientation(orientation: tuple[str, str, str]) -> tuple[str, str, str]:
    """The camera orientation that draws medswin's LPS world without mirroring, same 2D axes.

    napari calls an orientation left-handed when an odd number of its three axes differ from the
    default; medswin's world needs a left-handed camera, so only the depth axis is chosen.
    """
    vertical, horizontal = str(orientation[1]), str(orientation[2])
    flips_2d = (vertical != "down") + (horizontal != "right")
    return ("away" if flips_2d % 2 == 0 else "towards", vertical, horizontal)


def world_axis_letters(viewer: Any) -> list[tuple[str, str] | None] | None:
    """Per world axis of the viewer, its (increasing, decreasing) anatomical letters; None without medswin layers.

    A medswin layer of ``d`` spatial axes occupies the last ``d`` world axes, which run towards S, P
    and L (the last ``d`` of them); leading axes (a channel) have no letter. Only visible layers
    count, so the upright X-ray films (not in patient space) hide the markers while they are shown.
    """
    from napari_medswin._layers import METADATA_KEY

    dims = [
        int((layer.metadata.get(METADATA_KEY) or {}).get("spatial_dims", 0))
        for layer in viewer.layers
        if layer.visible and METADATA_KEY in layer.metadata
    ]
    if not dims or max(dims) not in (2, 3):
        return None
    spatial = max(dims)
    ndim = viewer.dims.ndim
    letters: list[tuple[str, str] | None] = [None] * ndim
    for offset, pair in enumerate(_AXIS_LETTERS[3 - spatial :]):
        axis = ndim - spatial + offset
        if axis >= 0:
            letters[axis] = pair
    return letters


def screen_directions(camera: Any, ndisplay: int) -> tuple[np.ndarray, np.ndarray]:
    """The screen's right and up directions as vectors over the displayed world axes.

    2D: the vertical axis runs down the screen for ``"down"``, the horizontal one to the right for
    ``"right"``. 3D: up is the camera's up direction and right follows from the view and up
    directions by the camera's handedness (fixed from its base view, which rotation preserves).
    """
    depth, vertical, horizontal = (str(v) for v in camera.orientation)
    if ndisplay == 2:
        up = np.array([-1.0 if vertical == "down" else 1.0, 0.0])
        right = np.array([0.0, 1.0 if horizontal == "right" else -1.0])
        return right, up
    view0 = np.array([1.0 if depth == "away" else -1.0, 0.0, 0.0])
    up0 = np.array([0.0, -1.0 if vertical == "down" else 1.0, 0.0])
    right0 = np.array([0.0, 0.0, 1.0 if horizontal == "right" else -1.0])
    sign = float(np.dot(np.cross(up0, view0), right0))
    view, up = np.asarray(camera.view_direction, float), np.asarray(camera.up_direction, float)
    return sign * np.cross(up, view), up


def _letters_along(direction: np.ndarray, displayed: tuple[int, ...], letters: list[Any]) -> str:
    parts = []
    for component, axis in sorted(zip(direction, displayed, strict=True), key=lambda p: -abs(p[0])):
        pair = letters[axis] if axis < len(letters) else None
        if pair is None or abs(component) < _SECOND_LETTER:
            continue
        parts.append(pair[0] if component > 0 else pair[1])
    return "".join(parts[:2])


def edge_letters(viewer: Any) -> dict[str, str]:
    """The anatomical letters of the canvas edges (``top``, ``bottom``, ``left``, ``right``); {} when unknown."""
    letters = world_axis_letters(viewer)
    if letters is None:
        return {}
    displayed = tuple(viewer.dims.displayed)
    right, up = screen_directions(viewer.camera, len(displayed))
    return {
        "top": _letters_along(up, displayed, letters),
        "bottom": _letters_along(-up, displayed, letters),
        "left": _letters_along(-right, displayed, letters),
        "right": _letters_along(right, displayed, letters),
    }


def anterior_view(viewer: Any) -> bool:
    """Look at the patient from the front, head up (3D only); False when S and P are not both displayed."""
    letters = world_axis_letters(viewer)
    if letters is None or viewer.dims.ndisplay != 3:
        return False
    displayed = tuple(viewer.dims.displayed)
    shown = [letters[axis] if axis < len(letters) else None for axis in displayed]
    if ("P", "A") not in shown or ("S", "I") not in shown:
        return False
    view = tuple(1.0 if pair == ("P", "A") else 0.0 for pair in shown)  # towards posterior
    up = tuple(1.0 if pair == ("S", "I") else 0.0 for pair in shown)  # towards the head
    viewer.camera.orientation = anatomical_orientation(tuple(viewer.camera.orientation))
    viewer.camera.set_view_direction(view_direction=view, up_direction=up)
    return True


class _AnatomyGuard:
    """Keeps one viewer's camera anatomical and its edge letters current."""

    def __init__(self, viewer: Any) -> None:
        from napari.components.overlays import TextOverlay

        self._viewer = weakref.ref(viewer)
        self._overlays = {}
        for edge, position in EDGES.items():
            overlay = TextOverlay(position=position, font_size=14, color="yellow", visible=False)
            viewer.canvas.overlays[_OVERLAY_KEY.format(edge)] = overlay
            self._overlays[edge] = overlay
        camera = viewer.camera
        camera.events.orientation.connect(self._keep_handedness)
        camera.events.angles.connect(self.update)
        camera.events.orientation.connect(self.update)
        viewer.dims.events.ndisplay.connect(self._on_ndisplay)
        viewer.dims.events.order.connect(self.update)
        viewer.layers.events.inserted.connect(self._on_layers_changed)
        viewer.layers.events.removed.connect(self._on_layers_changed)
        self._keep_handedness()
        self._on_layers_changed()

    def _keep_handedness(self, event: Any = None) -> None:
        viewer = self._viewer()
        if viewer is None:
            return
        wanted = anatomical_orientation(tuple(str(v) for v in viewer.camera.orientation))
        if tuple(str(v) for v in viewer.camera.orientation) != wanted:
            viewer.camera.orientation = wanted

    def _on_ndisplay(self, event: Any = None) -> None:
        viewer = self._viewer()
        if viewer is not None and viewer.dims.ndisplay == 3:
            anterior_view(viewer)
        self.update()

    def _on_layers_changed(self, event: Any = None) -> None:
        viewer = self._viewer()
        if viewer is None:
            return
        for layer in viewer.layers:  # a shown or hidden layer changes which frame is on screen
            layer.events.visible.connect(self.update)  # connect() skips a repeat
        self.update()

    def update(self, event: Any = None) -> None:
        """Write the edge letters for the current camera and displayed axes (hidden when unknown)."""
        viewer = self._viewer()
        if viewer is None:
            return
        letters = edge_letters(viewer)
        for edge, overlay in self._overlays.items():
            text = letters.get(edge, "")
            overlay.text = text
            overlay.visible = bool(text)


def install(viewer: Any) -> None:
    """Make ``viewer``'s views anatomically true (see the module docstring); calling it again does nothing."""
    if viewer is None or id(viewer) in _guards:
        return
    key = id(viewer)
    _guards[key] = _AnatomyGuard(viewer)  # lives as long as the viewer
    weakref.finalize(viewer, _guards.pop, key, None)


def install_current() -> None:
    """:func:`install` on napari's current viewer, if there is one (readers get no viewer from napari)."""
    try:
        import napari

        viewer = napari.current_viewer()
    except Exception:  # noqa: BLE001 - no Qt or no viewer: nothing to set up
        return
    if viewer is not None:
        install(viewer)
