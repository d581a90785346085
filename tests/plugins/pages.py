"""Page objects: what a user does with each medswin dock widget, for the viewer tests.

A test says "choose the model, press Run, read the table"; how each widget lays out its buttons
and tables is known here only, so a widget can be rearranged without rewriting its tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from napari.utils.notifications import NotificationSeverity, notification_manager

#: longest wait (ms) for a background run in the tests
RUN_TIMEOUT_MS = 60_000


class Notices:
    """The messages napari shows in its notification area while a test runs, by severity."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.infos: list[str] = []
        notification_manager.notification_ready.connect(self._receive)

    def _receive(self, event: Any) -> None:
        notification = getattr(event, "value", event)
        kind = {
            NotificationSeverity.ERROR: self.errors,
            NotificationSeverity.WARNING: self.warnings,
            NotificationSeverity.INFO: self.infos,
        }.get(notification.severity)
        if kind is not None:
            kind.append(str(notification.message))

    def close(self) -> None:
        notification_manager.notification_ready.disconnect(self._receive)


class _Page:
    """A docked widget, its layer pickers refreshed from the viewer's layers."""

    def __init__(self, viewer: Any, widget: Any, *, dock: bool = True, **dock_options: Any) -> None:
        """``dock_options``: passed to ``add_dock_widget`` (name, area)."""
        self.viewer, self.widget = viewer, widget
        if dock:
            viewer.window.add_dock_widget(widget, **dock_options)
        widget.reset_choices()


class RunPage(_Page):
    """A widget with Run/Cancel, a progress bar and a status line (:class:`~napari_medswin._components.BackgroundRun`)."""

    def _background(self) -> Any:
        return self.widget._background

    @property
    def running(self) -> bool:
        return self._background().running

    @property
    def run_enabled(self) -> bool:
        return bool(self._background().run_button.enabled)

    @property
    def cancel_enabled(self) -> bool:
        return bool(self._background().cancel_button.enabled)

    @property
    def status(self) -> str:
        return str(self._background().status.value)

    @property
    def progress(self) -> tuple[int, int]:
        """The progress bar as (value, maximum)."""
        bar = self._background().progress
        return int(bar.value), int(bar.max)

    @property
    def progressed(self) -> Any:
        """The signal (done, total, message) the worker reports through (queued to the GUI thread)."""
        return self._background().relay.progressed

    def press_run(self) -> None:
        self._background().run_button.native.click()

    def press_cancel(self) -> None:
        self._background().cancel_button.native.click()

    def run(self, qtbot: Any) -> None:
        """Press Run and wait until the work has finished (result, failure or cancel)."""
        self.press_run()
        assert self.running and not self.run_enabled and self.cancel_enabled
        # poll rather than wait for the signal: a quick failure may finish before a waiter connects
        qtbot.waitUntil(lambda: not self.running, timeout=RUN_TIMEOUT_MS)
        assert self.run_enabled and not self.cancel_enabled


class VolumesPage:
    """The 'Volumes of' panel of the Segment and Swin-X2S widgets."""

    def __init__(self, widget: Any) -> None:
        self.widget = widget

    def _panel(self) -> Any:
        return self.widget._volumes_panel

    def choose_volumes_of(self, layer: Any) -> None:
        self._panel().layer.reset_choices()
        self._panel().layer.value = layer

    def volume_table(self) -> dict[str, list[str]]:
        """The volume table as shown: column header -> cells."""
        return self._panel().table.texts()

    @property
    def volume_rows(self) -> int:
        return self._panel().table.rowCount()

    @property
    def verdict(self) -> str:
        return str(self._panel().verdict.value)

    @property
    def verdict_visible(self) -> bool:
        return self._panel().verdict.native.isVisibleTo(self.widget.native)

    @property
    def verdict_text(self) -> str:
        """The verdict line as the label holds it for display."""
        return str(self._panel().verdict.native.text())

    @property
    def verdict_wraps(self) -> bool:
        """Long reasons wrap instead of being cut off."""
        return bool(self._panel().verdict.native.wordWrap())

    def click_row(self, row: int) -> None:
        """Click a row of the volume table (jumps to its structure)."""
        self._panel().table.cellClicked.emit(row, 0)

    def press_show_all(self) -> None:
        self._panel().show_all.native.click()


class SegmentPage(RunPage, VolumesPage):
    """The Segment widget: image, model, device, overlap, clean-up, Run/Cancel, the volume table."""

    def choose_image(self, layer: Any) -> None:
        self.widget._image.value = layer

    @property
    def image(self) -> Any:
        return self.widget._image.value

    @property
    def model_choices(self) -> list[str]:
        return list(self.widget._models.model.choices)

    def choose_model(self, spec: str) -> None:
        self.widget._models.model.value = spec

    def choose_checkpoint(self, path: str | Path) -> None:
        self.widget._models.checkpoint.value = path

    @property
    def card(self) -> str:
        return str(self.widget._models.card.value)

    @property
    def missing(self) -> str:
        return str(self.widget._models.missing.value)

    @property
    def missing_shown(self) -> bool:
        return not self.widget._models.missing.native.isHidden()

    def press_show_missing(self) -> None:
        self.widget._models.show_missing.native.click()

    @property
    def overlap(self) -> float:
        return float(self.widget._overlap.value)

    def set_clean_up(self, keep_largest: bool, smallest_piece_ml: float) -> None:
        self.widget._keep_largest.value = keep_largest
        self.widget._min_piece.value = smallest_piece_ml

    def press_clean_up(self) -> None:
        self.widget._clean_up.native.click()


class ComparePage(RunPage):
    """The Compare widget: prediction, reference, NSD tolerance, Compare/Cancel, the score table."""

    def choose(self, prediction: Any, reference: Any, tolerance_mm: float | None = None) -> None:
        self.widget._prediction.value = prediction
        self.widget._reference.value = reference
        if tolerance_mm is not None:
            self.widget._tolerance.value = tolerance_mm

    @property
    def prediction(self) -> Any:
        return self.widget._prediction.value

    @property
    def reference(self) -> Any:
        return self.widget._reference.value

    def score_table(self) -> dict[str, list[str]]:
        """The score table as shown: column header -> cells."""
        return self.widget._table.texts()


class WindowPage(_Page):
    """The Window presets widget: an image layer and the preset menu."""

    def choose_image(self, layer: Any) -> None:
        self.widget._image.value = layer

    @property
    def presets(self) -> list[str]:
        return list(self.widget._preset.choices)

    @property
    def preset(self) -> str:
        return str(self.widget._preset.value)

    def choose_preset(self, name: str) -> None:
        self.widget._preset.value = name


class SeriesPage(_Page):
    """The Series widget: a study folder or zip, its series table, opening a row."""

    def choose_study(self, path: str | Path) -> None:
        self.widget._source.value = Path(path)

    def press_use_selected_layer(self) -> None:
        self.widget._from_layer.native.click()

    def press_list(self) -> None:
        self.widget._list_button.native.click()

    def series_table(self) -> dict[str, list[str]]:
        return self.widget._table.texts()

    def open_row(self, row: int) -> Any:
        """Select table row ``row``, press Open; returns the layer added (None when none was)."""
        before = len(self.viewer.layers)
        self.widget._table.selectRow(row)
        self.widget._open_button.native.click()
        return self.viewer.layers[-1] if len(self.viewer.layers) > before else None
