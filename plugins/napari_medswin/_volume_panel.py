"""'Volumes of' a labels layer: the volume table the Segment and Swin-X2S widgets share.

Counts voxels and mL per structure (recounted after every edit and undo), jumps to a structure,
shows the prediction's quality verdict, saves the table as CSV.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import Container, Label, PushButton, create_widget
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import Qt, QTimer
from qtpy.QtGui import QColor

from medswin.errors import MedSwinError
from napari_medswin._analysis import (
    StructureVolume,
    labels_fingerprint,
    structure_volumes,
    volume_origin,
    write_volumes_csv,
)
from napari_medswin._components import TextTable, _report
from napari_medswin._layers import image_from_layer
from napari_medswin._quality import VERDICT_COLORS, layer_quality, structure_quality, verdict_html
from napari_medswin._writer import label_names_of

if TYPE_CHECKING:
    import napari.viewer

__all__ = ["VOLUME_TABLE", "VolumePanel", "erase_undoably", "focus_structure"]

log = logging.getLogger(__name__)


# delay (ms) between an edit of the labels and the recount of the volume table
_EDIT_REFRESH_MS = 150
# layer events after which the voxels may differ: painting/filling, a new array, and set_data, the
# only one undo/redo emit (they write the array and re-slice); set_data also follows every slider
# move, so the voxels are fingerprinted before recounting
_EDIT_EVENTS = ("paint", "data", "set_data")
#: volume table: (row key, column header, cell format)
VOLUME_TABLE = (
    ("label", "label", "{}"),
    ("name", "name", "{}"),
    ("voxels", "voxels", "{:d}"),
    ("volume_ml", "volume (mL)", "{:.2f}"),
    ("qc", "QC", "{}"),
)


def focus_structure(viewer: Any, layer: Any, structure: StructureVolume) -> None:
    """Centre the view on a structure's centroid and show that label alone.

    The centroid is in LPS mm; napari's world axes are LPS in ``(z, y, x)`` order (see ``_layers``),
    so it goes into the last three world axes (a leading channel axis of a 4D image is untouched).
    """
    if structure.centroid_lps_mm is None:
        show_info(f"{structure.name} is not present in {layer.name}")
        return
    world = list(reversed(structure.centroid_lps_mm))
    first = viewer.dims.ndim - len(world)
    viewer.dims.set_point(range(first, viewer.dims.ndim), world)  # snaps to the nearest slice
    full = list(viewer.dims.point)
    full[first:] = world
    viewer.camera.center = tuple(full[axis] for axis in viewer.dims.displayed)
    layer.selected_label = structure.label
    layer.show_selected_label = True


def erase_undoably(layer: Any, indices: tuple[np.ndarray, ...]) -> None:
    """Set voxels of a labels layer to 0 as one step of napari's edit history (Ctrl+Z restores them).

    ``Labels.data_setitem`` would record the step too, but napari 0.9 then also writes the values into
    the slice on screen at the slice index its own ``_get_pt_not_disp`` computes, which for a rotated
    (oblique) layer can be the neighbouring slice: measured here, 45 voxels of another slice zeroed.
    The history atom is the one ``data_setitem`` records; undo/redo replay it on the array itself.
    """
    save_history = getattr(layer, "_save_history", None)
    if save_history is None:  # a napari without that hook: its public edit
        layer.data_setitem(indices, 0)
        return
    save_history((indices, np.array(layer.data[indices], copy=True), layer.data.dtype.type(0)))
    layer.data[indices] = 0
    layer.refresh()


class VolumePanel(Container):
    """'Volumes of' a labels layer: voxels and mL per structure, recounted after every edit and undo;
    a row click jumps to its structure; the table saves as CSV.

    A layer a medswin model predicted keeps its quality report (:mod:`medswin.qc`) in its metadata:
    the panel shows its verdict and every flagged check's reason above the table, and each row the
    check of its structure (volume, sides, pieces, edge, confidence), so they stay in view after a run.
    """

    def __init__(self, viewer: napari.viewer.Viewer, actions: Sequence[Any] = ()) -> None:
        """``actions``: more widgets acting on the chosen layer, shown above the table."""
        self._viewer = viewer
        self._volumes: list[StructureVolume] = []
        self._volumes_of: Any = None  # the labels layer the table describes
        self._volumes_fingerprint: int | None = None
        self._cleared_for: Any = None  # the layer chosen when the table was cleared: not recounted by itself
        self._edit_timer = QTimer()
        self._edit_timer.setSingleShot(True)
        self._edit_timer.setInterval(_EDIT_REFRESH_MS)
        self._edit_timer.timeout.connect(self._recount_if_changed)
        self.layer = create_widget(label="Volumes of", annotation="napari.layers.Labels")
        self.table = TextTable(VOLUME_TABLE)
        self.show_all = PushButton(text="Show all labels")
        self.export = PushButton(text="Save volumes as CSV…", enabled=False)
        #: the verdict of the layer's prediction and the reasons of its flagged checks (rich text, wrapped)
        self.verdict = Label(value="")
        self.verdict.native.setWordWrap(True)
        self.verdict.native.setTextFormat(Qt.TextFormat.RichText)
        self.verdict.native.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.verdict.visible = False
        self._quality: Any = None  # the QualityReport of the layer shown, None for labels no model made
        super().__init__(
            widgets=[
                self.layer,
                Container(widgets=[self.show_all, self.export], layout="horizontal", labels=False),
                *actions,
                self.verdict,
            ]
        )
        self.margins = (0, 0, 0, 0)
        self.native.layout().addWidget(self.table)
        self._edit_timer.setParent(self.native)  # deleted with the widget: no recount after the viewer closes
        self.layer.changed.connect(self.refresh)
        self.table.cellClicked.connect(lambda row, _column: self.focus_row(row))
        self.show_all.changed.connect(self._on_show_all)
        self.export.changed.connect(self._on_export)

    def reset_choices(self, *args: Any) -> None:
        """Refresh the layer menu (napari calls this when layers change) and the table if its layer changed."""
        super().reset_choices(*args)
        if self.layer.value is not self._volumes_of and self.layer.value is not self._cleared_for:
            self.refresh()

    def show_layer(self, layer: Any) -> None:
        """Choose ``layer`` (e.g. one just added) and count its structures."""
        self.layer.reset_choices()
        self.layer.value = layer
        self.refresh(layer)

    def refresh(self, layer: Any = None) -> None:
        """Recount the chosen (or the given) labels layer and show its table."""
        layer = layer if layer is not None else self.layer.value
        self._cleared_for = None
        if layer is not self._volumes_of:  # follow every change of the voxels of the layer shown
            for old in [self._volumes_of] if self._volumes_of is not None else []:
                for event in _EDIT_EVENTS:
                    getattr(old.events, event).disconnect(self._on_labels_edited)
            if layer is not None:
                for event in _EDIT_EVENTS:
                    getattr(layer.events, event).connect(self._on_labels_edited)
        self._volumes_of = layer
        self._volumes_fingerprint = None if layer is None else labels_fingerprint(layer.data)
        if layer is None:
            self._volumes = []
        else:
            try:
                labels = image_from_layer(layer, kind="label")
                attributes = {"metadata": layer.metadata, "features": layer.features}
                self._volumes = structure_volumes(labels, label_names_of(attributes))
            except MedSwinError as error:
                _report(error)
                self._volumes = []
        self._show_quality(None if layer is None else layer_quality(layer.metadata), layer)
        self.export.enabled = layer is not None

    def _show_quality(self, quality: Any, layer: Any) -> None:
        """The verdict line and reasons, and the table with each structure's check (coloured, reason as tooltip)."""
        self._quality = quality
        self.verdict.value = verdict_html(quality, layer.name) if layer is not None else ""
        self.verdict.visible = bool(self.verdict.value)
        checks = [structure_quality(quality, v.name) if quality else ("", "") for v in self._volumes]
        self.table.set_rows([{**v.as_row(), "qc": verdict} for v, (verdict, _) in zip(self._volumes, checks)])
        column = [key for key, _, _ in VOLUME_TABLE].index("qc")
        for row, (verdict, reason) in enumerate(checks):
            item = self.table.item(row, column)
            if verdict in VERDICT_COLORS and verdict != "ok":
                item.setForeground(QColor(VERDICT_COLORS[verdict]))
            item.setToolTip(reason)

    @property
    def quality(self) -> Any:
        """The quality report of the layer shown (:class:`~medswin.qc.core.QualityReport`), or None."""
        return self._quality

    def clear(self) -> None:
        """Empty the table (its numbers belong to an earlier result); choosing a layer counts again."""
        if self._volumes_of is not None:
            for event in _EDIT_EVENTS:
                getattr(self._volumes_of.events, event).disconnect(self._on_labels_edited)
        self._cleared_for = self.layer.value
        self._volumes_of, self._volumes, self._volumes_fingerprint = None, [], None
        self._show_quality(None, None)
        self.export.enabled = False

    def _on_labels_edited(self, event: Any = None) -> None:
        # napari announces a paint before writing the voxels, and a brush drag paints many times:
        # recount once the event loop is idle again, at most every _EDIT_REFRESH_MS
        self._edit_timer.start()

    def _recount_if_changed(self) -> None:
        """Recount when the voxels differ from those counted (undo/redo only re-slice, emitting set_data)."""
        layer = self._volumes_of
        if layer is None or labels_fingerprint(layer.data) == self._volumes_fingerprint:
            return  # nothing shown, or a new slice shown with the same voxels
        self.refresh(layer)

    def export_volumes(self, path: str | Path) -> Path:
        """Write the volume table as CSV (label, name, voxels, volume_ml, qc, qc_reason, case_qc,
        case_qc_reason, model, intended_use, source, layer)."""
        layer = self._volumes_of
        if layer is None:
            raise MedSwinError("no labels layer chosen: pick one under 'Volumes of' first")
        self._recount_if_changed()  # an edit within the last _EDIT_REFRESH_MS counts too
        return write_volumes_csv(
            self._volumes, path, **volume_origin(layer.name, layer.metadata), quality=self._quality
        )

    def _on_export(self) -> None:
        from qtpy.QtWidgets import QFileDialog

        layer = self._volumes_of
        if layer is None:
            show_error("Choose a labels layer under 'Volumes of' first")
            return
        suggested = f"{layer.name.replace('/', '_')}_volumes.csv"
        path, _ = QFileDialog.getSaveFileName(self.native, "Save volumes", suggested, "CSV (*.csv)")
        if not path:
            return
        try:
            written = self.export_volumes(path)
        except (MedSwinError, OSError) as error:
            _report(error)
            return
        show_info(f"Saved the volume table to {written}")

    @property
    def volumes(self) -> list[StructureVolume]:
        """The rows of the volume table (label, name, voxels, mL, centroid)."""
        return list(self._volumes)

    def focus_row(self, row: int) -> None:
        """Jump to the structure of table row ``row`` and highlight it."""
        layer = self.layer.value
        if layer is not None and 0 <= row < len(self._volumes):
            focus_structure(self._viewer, layer, self._volumes[row])

    def _on_show_all(self) -> None:
        layer = self.layer.value
        if layer is not None:
            layer.show_selected_label = False
