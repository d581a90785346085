"""Dock widgets: Segment (run a model, see volumes, jump to a structure) and Compare (scores vs a reference).

Thin magicgui containers over the Qt-free functions in :mod:`napari_medswin._segment` and
:mod:`napari_medswin._analysis`. Long work runs in ``napari.qt.threading.create_worker`` so the
viewer stays responsive; problems are shown with ``napari.utils.notifications.show_error``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    ProgressBar,
    PushButton,
    create_widget,
)
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QObject, Qt, QTimer, Signal
from qtpy.QtGui import QColor
from qtpy.QtWidgets import QAbstractItemView, QTableWidget, QTableWidgetItem

from medswin.errors import CancelledError, CheckpointError, MedSwinError
from medswin.inference.runtime import available_devices
from medswin.models.fit import check_fit
from napari_medswin._analysis import (
    StructureVolume,
    compare_structures,
    labels_fingerprint,
    structure_volumes,
    volume_origin,
    write_volumes_csv,
)
from napari_medswin._layers import (
    AUTO_WINDOW,
    CT_WINDOW_PRESETS,
    METADATA_KEY,
    image_from_layer,
    layer_attributes,
    layer_to_image,
    percentile_window,
    spatial_transform,
)
from napari_medswin._orientation import install
from napari_medswin._quality import (
    VERDICT_COLORS,
    layer_quality,
    structure_quality,
    verdict_html,
)
from napari_medswin._segment import (
    CHECKPOINT_CHOICE,
    SegmentationRunner,
    card_summary_text,
    clean_up_layer_data,
    clean_up_settings,
    model_card,
    model_choices,
    prediction_layer_data,
)
from napari_medswin._writer import label_names_of

if TYPE_CHECKING:
    import napari.viewer

__all__ = [
    "BackgroundRun",
    "ModelMenu",
    "SegmentWidget",
    "VolumePanel",
    "CompareWidget",
    "SeriesWidget",
    "WindowWidget",
    "TextTable",
    "focus_structure",
    "series_rows",
]

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
#: comparison table: (row key, column header, cell format)
COMPARE_TABLE = (
    ("label", "label", "{}"),
    ("name", "name", "{}"),
    ("dice", "Dice", "{:.3f}"),
    ("hd95_mm", "HD95 (mm)", "{:.2f}"),
    ("nsd", "NSD", "{:.3f}"),
    ("empty", "empty", "{}"),
    ("pair", "compared (prediction ↔ reference)", "{}"),
)


class TextTable(QTableWidget):
    """A read-only table of formatted numbers, one row per structure (what the user reads is what is tested)."""

    #: rows always in view (a long dock must not squeeze the table to one row); more rows scroll
    VISIBLE_ROWS = 6

    def __init__(self, layout: Sequence[tuple[str, str, str]]) -> None:
        super().__init__(0, len(layout))
        self._layout = tuple(layout)
        self.setHorizontalHeaderLabels([header for _, header, _ in self._layout])
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.verticalHeader().setVisible(False)
        self.horizontalHeader().setStretchLastSection(True)

    def set_rows(self, rows: Sequence[dict[str, Any]]) -> None:
        """Show ``rows`` (dicts with the layout's keys), each value formatted by its column's format."""
        self.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, (key, _, fmt) in enumerate(self._layout):
                item = QTableWidgetItem(fmt.format(row[key]))
                if isinstance(row[key], int | float):
                    item.setTextAlignment(int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter))
                self.setItem(r, c, item)
        self.resizeColumnsToContents()
        shown = range(min(len(rows), self.VISIBLE_ROWS))
        header = self.horizontalHeader().sizeHint().height()
        self.setMinimumHeight(header + sum(self.rowHeight(r) for r in shown) + 2 * self.frameWidth())

    def texts(self) -> dict[str, list[str]]:
        """The shown text, column header -> cells."""
        return {
            header: [self.item(r, c).text() for r in range(self.rowCount())]
            for c, (_, header, _) in enumerate(self._layout)
        }


class _ProgressRelay(QObject):
    """Carries progress and fit warnings from the worker thread to the GUI thread (queued Qt signals)."""

    progressed = Signal(int, int, str)
    warned = Signal(list)


def _report(error: BaseException) -> None:
    """Show a failure to the user: medswin's own message, else the exception type and text."""
    if isinstance(error, MedSwinError):
        show_error(str(error))
    else:
        log.exception("medswin plugin failure", exc_info=error)
        show_error(f"{type(error).__name__}: {error}")


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


class ModelMenu:
    """The model menu of a run widget: runnable models of one kind, a checkpoint file, the card summary,
    and (folded away) the models not on this computer yet with the command that brings each.

    Not a widget itself: its widgets (``model``, ``checkpoint``, ``card``, ``show_missing``,
    ``missing``) go where the owning widget lays them out.
    """

    def __init__(self, *, radiographs: bool = False, on_card: Callable[[Any], None] | None = None) -> None:
        """``radiographs``: offer biplanar X-ray models instead of volume models; ``on_card(card)`` is
        called whenever a usable model is chosen (e.g. to take its recommended settings)."""
        self._on_card = on_card
        # only models that can run: shipped, pulled or imported (the first is the default), or a file;
        # the others are listed below the menu with the command that brings them
        models = model_choices(radiographs=radiographs)
        choices = [(c.label, c.spec) for c in models if c.has_weights]
        self.model = ComboBox(label="Model", choices=[*choices, (CHECKPOINT_CHOICE, CHECKPOINT_CHOICE)])
        self.checkpoint = FileEdit(label="Checkpoint", mode="r", filter="*.safetensors")
        self.card = Label(value="")
        self.card.native.setWordWrap(True)
        missing = [c for c in models if not c.has_weights]
        self.missing = Label(
            value="Not on this computer yet (run, then reopen this panel):\n"
            + "\n".join(f"• {c.label}" for c in missing)
            if missing
            else ""
        )
        self.missing.native.setWordWrap(True)
        self.missing.native.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.missing.visible = False  # a long list: shown on request, so the tables keep their room
        self.show_missing = PushButton(
            text=f"Models to download or import ({len(missing)})…", visible=bool(missing)
        )
        self.show_missing.changed.connect(self._toggle_missing)
        self.model.changed.connect(self.update)
        self.checkpoint.changed.connect(self.update)

    def _toggle_missing(self) -> None:
        self.missing.visible = self.missing.native.isHidden()  # isHidden: set state, shown or not

    def spec(self) -> str:
        """The chosen model as ``resolve_model`` takes it: a name, or the checkpoint file's path."""
        if self.model.value != CHECKPOINT_CHOICE:
            return str(self.model.value)
        path = Path(str(self.checkpoint.value or "")).expanduser()
        if not path.is_file():
            raise CheckpointError(
                f"no checkpoint chosen ({path} is not a file): pick a medswin checkpoint (.safetensors) file"
            )
        return str(path)

    def update(self, value: Any = None) -> None:
        """Show the file picker for checkpoint files and the chosen model's card summary."""
        self.checkpoint.visible = self.model.value == CHECKPOINT_CHOICE
        try:
            card = model_card(self.spec())
        except MedSwinError as error:  # no file chosen yet, or not a medswin checkpoint: Run will say why
            self.card.value = "" if self.model.value == CHECKPOINT_CHOICE else str(error)
            return
        self.card.value = card_summary_text(card)
        if self._on_card is not None:
            self._on_card(card)


class BackgroundRun:
    """Run and Cancel buttons, a progress bar and a status line over one worker thread at a time.

    The work runs in ``napari.qt.threading.create_worker``; it reports through :attr:`relay`
    (queued Qt signals, so the GUI thread updates the bar) and polls :attr:`cancel_requested`, set by
    Cancel; medswin's long operations raise ``CancelledError`` then, which is said, not shown as an error.
    """

    def __init__(self, what: str) -> None:
        """``what`` names the work for the user, e.g. "Segmentation" ("Segmentation cancelled")."""
        self._what = what
        self.relay = _ProgressRelay()
        self.relay.progressed.connect(self._on_progress)
        self.cancel_requested = threading.Event()
        self.worker: Any = None
        self.run_button = PushButton(text="Run")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.progress = ProgressBar(label="Progress", min=0, max=1, value=0)
        self.status = Label(value="")
        #: input files of the running work: an error naming one is shown problem first, file second
        self.paths: list[str] = []
        self.cancel_button.changed.connect(self.cancel)

    @property
    def running(self) -> bool:
        return self.worker is not None

    def buttons(self) -> Container:
        """Run and Cancel side by side."""
        return Container(widgets=[self.run_button, self.cancel_button], layout="horizontal", labels=False)

    def start(self, work: Callable[[], Any], on_result: Callable[[Any], None]) -> Any:
        """Run ``work()`` in a worker thread and hand its result to ``on_result`` in the GUI thread; returns the worker."""
        self.cancel_requested.clear()
        self.progress.value = 0
        self.status.value = "starting…"
        self.run_button.enabled, self.cancel_button.enabled = False, True
        # errors go to _on_error (a cancel is not an error), not to napari's own handler
        worker = create_worker(work, _start_thread=False, _ignore_errors=True)
        worker.returned.connect(on_result)
        worker.errored.connect(self._on_error)
        worker.finished.connect(self._on_finished)
        self.worker = worker
        worker.start()
        return worker

    def cancel(self) -> None:
        """Ask the running work to stop at its next check (it raises CancelledError)."""
        if self.running:
            self.cancel_requested.set()
            self.cancel_button.enabled = False
            self.status.value = "cancelling…"

    def done(self, message: str) -> None:
        """Show a finished run: full bar and ``message``."""
        self.progress.value = self.progress.max
        self.status.value = message

    def _on_progress(self, done: int, total: int, message: str) -> None:
        self.progress.max = max(int(total), 1)
        self.progress.value = min(int(done), self.progress.max)
        self.status.value = message

    def _on_error(self, error: BaseException) -> None:
        if isinstance(error, CancelledError):
            self.status.value = "cancelled"
            show_info(f"{self._what} cancelled")
            return
        self.status.value = "failed"
        if isinstance(error, MedSwinError):
            from napari_medswin._reader import problem_first

            message = str(error)
            for path in self.paths:
                message = problem_first(message, path) if path else message
            show_error(message)
            return
        _report(error)

    def _on_finished(self) -> None:
        self.worker = None
        self.run_button.enabled, self.cancel_button.enabled = True, False


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


class SegmentWidget(Container):
    """Pick an image layer and a model, run it in the background, inspect the labels and their volumes."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        self._viewer = viewer
        install(viewer)  # 3D views of its results anatomically true, with edge letters
        self._runner = SegmentationRunner()
        self._background = BackgroundRun("Segmentation")
        self._relay = self._background.relay
        self._relay.warned.connect(self._on_fit_warnings)
        self._fit_context = ("", "")
        self._started = 0.0

        self._image = create_widget(label="Image", annotation="napari.layers.Image")
        self._models = ModelMenu(radiographs=False, on_card=self._take_card_settings)
        self._model, self._checkpoint, self._card = (
            self._models.model,
            self._models.checkpoint,
            self._models.card,
        )
        self._missing, self._show_missing = self._models.missing, self._models.show_missing
        self.fit_warnings: list[str] = []  # why the last image run may not suit its model
        self._device = ComboBox(label="Device", choices=available_devices())
        self._overlap = FloatSpinBox(label="Overlap", value=0.5, min=0.0, max=0.95, step=0.05)
        # clean-up: the CLI's --keep-largest / --min-size-mm3, through the same Postprocess
        self._keep_largest = CheckBox(text="Keep the largest piece of each structure", value=False)
        self._min_piece = FloatSpinBox(
            label="Remove pieces under (mL)", value=0.0, min=0.0, max=10_000.0, step=0.5
        )
        self._clean_up = PushButton(text="Clean up labels now")
        self._run, self._cancel = self._background.run_button, self._background.cancel_button
        self._progress, self._status = self._background.progress, self._background.status
        self._volumes_panel = VolumePanel(viewer, actions=[self._clean_up])
        self._volume_layer, self._table = self._volumes_panel.layer, self._volumes_panel.table
        self._show_all, self._export = self._volumes_panel.show_all, self._volumes_panel.export
        super().__init__(
            widgets=[
                self._image,
                self._model,
                self._checkpoint,
                self._card,
                self._device,
                self._overlap,
                self._keep_largest,
                self._min_piece,
                self._background.buttons(),
                self._progress,
                self._status,
                self._show_missing,
                self._missing,
                self._volumes_panel,
            ]
        )
        self._models.update()
        self._run.changed.connect(self.run)
        self._clean_up.changed.connect(self.clean_up)

    # ------------------------------------------------------------------ running
    @property
    def running(self) -> bool:
        return self._background.running

    def _take_card_settings(self, card: Any) -> None:
        """A newly chosen model brings its card's recommended overlap."""
        self._overlap.value = min(card.overlap, self._overlap.max)

    def run(self) -> Any:
        """Start a prediction on the chosen image layer in a worker thread; returns the worker."""
        if self.running:
            return self._background.worker
        layer = self._image.value
        if layer is None:
            show_error("Open an image first (File > Open, or File > Open Sample > medswin)")
            return None
        try:
            spec = self._models.spec()
            card = model_card(spec)
        except MedSwinError as error:
            _report(error)
            return None
        data, attributes = layer.data, layer_attributes(layer)
        dims = int((attributes["metadata"].get(METADATA_KEY) or {}).get("spatial_dims", min(layer.ndim, 3)))
        transform = spatial_transform(layer, dims)
        runner, device, overlap = self._runner, str(self._device.value), float(self._overlap.value)
        progress, cancel = self._relay.progressed.emit, self._background.cancel_requested.is_set
        postprocess = clean_up_settings(bool(self._keep_largest.value), float(self._min_piece.value))

        warn = self._relay.warned.emit

        def predict() -> tuple[Any, Any]:  # in the worker thread: convert (copies voxels), check, predict
            image = layer_to_image(data, attributes, kind="intensity")
            warn([str(w) for w in check_fit(image, card)])  # said, not enforced: the run goes on
            return image, runner.run(
                image,
                spec,
                device=device,
                overlap=overlap,
                progress=progress,
                cancel=cancel,
                postprocess=postprocess,
            )

        self.fit_warnings = []
        self._fit_context = (layer.name, card.id)
        self._started = time.monotonic()
        source = ((attributes["metadata"].get(METADATA_KEY) or {}).get("meta") or {}).get("path")
        self._background.paths = [str(source)] if source else []
        return self._background.start(predict, lambda result: self._on_result(*result, layer.name, transform))

    def cancel(self) -> None:
        """Ask the running prediction to stop at its next window (the Predictor raises CancelledError)."""
        self._background.cancel()

    def _on_fit_warnings(self, reasons: list[str]) -> None:
        self.fit_warnings = list(reasons)
        if reasons:
            image_name, model = self._fit_context
            show_warning(f"{model} may not suit {image_name}: " + "; ".join(reasons) + ". Running anyway.")

    def _on_result(self, image: Any, prediction: Any, image_name: str, transform: dict[str, Any]) -> None:
        try:
            data, kwargs, _ = prediction_layer_data(image, prediction, image_name, transform)
        except MedSwinError as error:
            _report(error)
            return
        # a re-run adds a new layer (napari numbers the name): earlier results may hold manual edits
        layer = self._viewer.add_labels(data, **kwargs)
        waited, model = time.monotonic() - self._started, prediction.timings.get("total")
        share = f" (model {model:.1f} s)" if model is not None else ""
        self._background.done(f"{layer.name}: done in {waited:.1f} s{share}")  # what the user waited
        self._volumes_panel.show_layer(layer)

    # ------------------------------------------------------------------ volumes
    def _refresh_volumes(self, layer: Any = None) -> None:
        self._volumes_panel.refresh(layer)

    def export_volumes(self, path: str | Path) -> Path:
        """Write the volume table as CSV (volumes, each structure's check and the verdict, origin)."""
        return self._volumes_panel.export_volumes(path)

    @property
    def quality(self) -> Any:
        """The quality report of the 'Volumes of' layer's prediction, or None."""
        return self._volumes_panel.quality

    @property
    def volumes(self) -> list[StructureVolume]:
        """The rows of the volume table (label, name, voxels, mL, centroid)."""
        return self._volumes_panel.volumes

    def focus_row(self, row: int) -> None:
        """Jump to the structure of table row ``row`` and highlight it."""
        self._volumes_panel.focus_row(row)

    def clean_up(self) -> int:
        """Apply the clean-up options to the 'Volumes of' layer as one undoable edit; returns voxels cleared."""
        layer = self._volume_layer.value
        if layer is None:
            show_error("Choose a labels layer under 'Volumes of' first")
            return 0
        postprocess = clean_up_settings(bool(self._keep_largest.value), float(self._min_piece.value))
        if postprocess.is_identity:
            show_info("Nothing to clean up: tick 'Keep the largest piece' or set a smallest piece in mL")
            return 0
        try:
            changed = clean_up_layer_data(layer.data, layer_attributes(layer), postprocess)
        except MedSwinError as error:
            _report(error)
            return 0
        cleared = int(changed[0].size) if changed else 0
        if cleared:
            erase_undoably(layer, changed)
        self._status.value = f"{layer.name}: clean-up removed {cleared} voxels"
        self._refresh_volumes(layer)
        return cleared


class CompareWidget(Container):
    """Dice, HD95 (mm) and NSD per label of a predicted Labels layer against a reference Labels layer."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        self._viewer = viewer
        self._worker: Any = None
        self._rows: list[dict[str, Any]] = []
        self._layers_compared: tuple[str, str] = ("", "")
        self._prediction = create_widget(label="Prediction", annotation="napari.layers.Labels")
        self._reference = create_widget(label="Reference", annotation="napari.layers.Labels")
        self._tolerance = FloatSpinBox(label="NSD tolerance (mm)", value=2.0, min=0.0, max=50.0, step=0.5)
        self._compare = PushButton(text="Compare")
        self._status = Label(value="")
        self._table = TextTable(COMPARE_TABLE)
        super().__init__(
            widgets=[
                self._prediction,
                self._reference,
                self._tolerance,
                self._compare,
                self._status,
            ]
        )
        self.native.layout().addWidget(self._table)
        self._compare.changed.connect(self.compare)

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The rows of the score table (label, name, dice, hd95_mm, nsd, empty, pair, prediction_name, reference_name)."""
        return list(self._rows)

    def compare(self) -> Any:
        """Score the chosen layers in a worker thread; returns the worker."""
        if self._worker is not None:
            return self._worker
        prediction, reference = self._prediction.value, self._reference.value
        if prediction is None or reference is None:
            show_error("Choose a prediction and a reference Labels layer")
            return None
        if prediction is reference:
            show_error("The prediction and the reference are the same layer")
            return None
        try:
            pred_image = image_from_layer(prediction, kind="label")
            ref_image = image_from_layer(reference, kind="label")
        except MedSwinError as error:
            _report(error)
            return None
        names = label_names_of({"metadata": prediction.metadata, "features": prediction.features})
        ref_names = label_names_of({"metadata": reference.metadata, "features": reference.features})
        self._status.value = "comparing…"
        self._compare.enabled = False
        self._layers_compared = (prediction.name, reference.name)
        worker = create_worker(
            compare_structures,
            pred_image,
            ref_image,
            names,
            float(self._tolerance.value),
            reference_names=ref_names,
            _start_thread=False,
            _ignore_errors=True,  # _on_error shows them
        )
        worker.returned.connect(self._on_result)
        worker.errored.connect(self._on_error)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        worker.start()
        return worker

    def _on_result(self, rows: Sequence[dict[str, Any]]) -> None:
        self._rows = list(rows)
        self._table.set_rows(self._rows)
        dice = [row["dice"] for row in self._rows]
        prediction, reference = self._layers_compared
        pairs = "; ".join(f"{row['label']}: {row['pair']}" for row in self._rows)
        if not dice:
            self._status.value = f"{prediction} vs {reference}: no labels in either"
            return
        differ = [str(row["label"]) for row in self._rows if row["pair"].endswith("(names differ)")]
        warning = (
            f"\nNames differ for label(s) {', '.join(differ)}: check both maps number structures alike"
            if differ
            else ""
        )
        self._status.value = (
            f"{prediction} vs {reference}, paired by label value: mean Dice {np.mean(dice):.3f} over "
            f"{len(dice)} labels\n{pairs}{warning}"
        )

    def _on_error(self, error: BaseException) -> None:
        self._status.value = "failed"
        _report(error)

    def _on_finished(self) -> None:
        self._worker = None
        self._compare.enabled = True


class WindowWidget(Container):
    """Window/level presets for an image layer: CT windows (soft tissue, lung, bone, brain...) or percentiles.

    The first choice follows the modality and the DICOM body part (a head CT opens in the brain
    window); picking another sets the layer's contrast limits.
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        self._viewer = viewer
        self._updating = True  # menus being filled: no preset is being picked
        self._image = create_widget(label="Image", annotation="napari.layers.Image")
        self._preset = ComboBox(label="Window", choices=self._preset_choices)
        super().__init__(widgets=[self._image, self._preset])
        self._image.changed.connect(self._on_image_changed)
        self._preset.changed.connect(self.apply)
        self._on_image_changed()

    def _preset_choices(self, widget: Any = None) -> list[str]:
        picker = getattr(self, "_image", None)  # not there yet while the ComboBox is built
        layer = picker.value if picker is not None else None
        if layer is None:
            return [AUTO_WINDOW]
        info = layer.metadata.get(METADATA_KEY) or {}
        modality = str((info.get("meta") or {}).get("modality", "")).upper()
        ct = modality == "CT" if modality else _looks_like_hu(layer.data)
        return [*CT_WINDOW_PRESETS, AUTO_WINDOW] if ct else [AUTO_WINDOW]

    def reset_choices(self, *args: Any) -> None:
        """Refresh the layer menu (napari calls this when layers change) and the presets it offers."""
        self._updating = True
        try:
            super().reset_choices(*args)
        finally:
            self._updating = False
        self._on_image_changed()

    def _on_image_changed(self, value: Any = None) -> None:
        layer = self._image.value
        self._updating = True  # a newly chosen layer keeps its own window until a preset is picked
        try:
            self._preset.reset_choices()
            if layer is not None:
                shown = (layer.metadata.get(METADATA_KEY) or {}).get("window")
                choices = list(self._preset.choices)
                self._preset.value = shown if shown in choices else choices[0]
        finally:
            self._updating = False

    def apply(self, value: Any = None) -> None:
        """Set the chosen preset's contrast limits on the chosen image layer."""
        layer = self._image.value
        if layer is None or self._updating:
            return
        preset = str(self._preset.value)
        window = CT_WINDOW_PRESETS.get(preset) or percentile_window(layer.data)
        layer.contrast_limits = list(window)
        layer.metadata.setdefault(METADATA_KEY, {})["window"] = preset


def _looks_like_hu(data: Any) -> bool:
    """Intensities of a file that does not name its modality: air near -1000 HU means CT."""
    values = np.asarray(data)
    return bool(values.size) and float(values.min()) <= -900.0 and float(values.max()) >= 0.0


#: series table: (row key, column header, cell format)
SERIES_TABLE = (
    ("number", "#", "{}"),
    ("description", "description", "{}"),
    ("modality", "modality", "{}"),
    ("slices", "slices", "{}"),
    ("spacing", "spacing (mm)", "{}"),
)


def series_rows(path: str) -> list[dict[str, Any]]:
    """The series of a DICOM folder, zip or file as table rows (largest first), with their uid."""
    from medswin.io import list_series

    rows = []
    for info in list_series(path):
        spacing = " x ".join(f"{s:g}" for s in info.spacing) if info.spacing else "?"
        rows.append(
            {
                "uid": info.uid,
                "number": "" if info.number is None else info.number,
                "description": info.description or "(no description)",
                "modality": info.modality,
                "slices": info.num_frames,
                "spacing": spacing,
            }
        )
    return rows


class SeriesWidget(Container):
    """The series of a DICOM folder or zip (description, modality, slices, spacing); opens the chosen ones.

    File > Open shows the largest series; this lists the others of the same study and adds each
    chosen one as a layer named by its SeriesDescription.
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        self._viewer = viewer
        install(viewer)
        self._rows: list[dict[str, Any]] = []
        self._source = FileEdit(label="Study (folder or zip)", mode="d")
        self._from_layer = PushButton(text="Use the selected layer's study")
        self._list_button = PushButton(text="List series")
        self._open_button = PushButton(text="Open selected series")
        self._status = Label(value="")
        self._table = TextTable(SERIES_TABLE)
        super().__init__(
            widgets=[self._source, self._from_layer, self._list_button, self._open_button, self._status]
        )
        self.native.layout().addWidget(self._table)
        self._from_layer.changed.connect(self.use_selected_layer)
        self._list_button.changed.connect(self.list_series)
        self._open_button.changed.connect(lambda: self.open_row(self._table.currentRow()))

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The listed series: uid, number, description, modality, slices, spacing."""
        return list(self._rows)

    def use_selected_layer(self) -> None:
        """Take the study of the selected layer (a DICOM folder or zip opened with medswin) and list it."""
        layer = self._viewer.layers.selection.active
        meta = ((layer.metadata.get(METADATA_KEY) or {}).get("meta") or {}) if layer is not None else {}
        source = meta.get("source_archive") or meta.get("path")
        if meta.get("format") != "dicom" or not source:
            show_error("Select a layer opened from a DICOM folder or zip first")
            return
        self._source.value = Path(str(source))
        self.list_series()

    def list_series(self) -> None:
        """List the series of the chosen folder or zip."""
        path = str(self._source.value or "")
        try:
            self._rows = series_rows(path)
        except MedSwinError as error:
            self._rows = []
            _report(error)
        self._table.set_rows(self._rows)
        self._status.value = f"{len(self._rows)} series in {Path(path).name}"

    def open_row(self, row: int) -> Any:
        """Add series ``row`` of the table as an image layer; returns the layer (None when nothing was opened)."""
        from napari_medswin._reader import read_series_layer

        if not 0 <= row < len(self._rows):
            show_error("Choose a series in the table first")
            return None
        try:
            data, kwargs, _ = read_series_layer(str(self._source.value), self._rows[row]["uid"])
        except MedSwinError as error:
            _report(error)
            return None
        return self._viewer.add_image(data, **kwargs)
