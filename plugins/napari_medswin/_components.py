"""Parts the dock widgets share: a text table, Run/Cancel over a worker thread, the model menu.

Each is a magicgui/Qt piece that a widget lays out where it wants; problems are shown with
``napari.utils.notifications.show_error`` (:func:`_report`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from magicgui.widgets import ComboBox, Container, FileEdit, Label, ProgressBar, PushButton
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QObject, Qt, Signal
from qtpy.QtWidgets import QAbstractItemView, QTableWidget, QTableWidgetItem

from medswin.errors import CancelledError, CheckpointError, MedSwinError
from napari_medswin._segment import CHECKPOINT_CHOICE, card_summary_text, model_card, model_choices

__all__ = ["BackgroundRun", "ModelMenu", "TextTable"]

log = logging.getLogger(__name__)


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
