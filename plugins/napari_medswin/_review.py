"""The Review dock: the cases of a ``medswin predict`` output folder by quality verdict, each opened on click.

A batch writes ``report.html`` for reading; this dock is for looking: the cases to look at first
(``fail``, cases that did not run, ``warn``, then ``ok``) are at the top, and a click opens the case's
input image and its label map in physical space, the labels keeping the recorded verdict so the
Segment panel's volume table shows each structure's check.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicgui.widgets import Container, FileEdit, Label, PushButton
from napari.utils.notifications import show_error
from qtpy.QtCore import Qt
from qtpy.QtGui import QColor

from medswin.errors import MedSwinError
from medswin.qc.core import QualityReport
from napari_medswin._components import TextTable
from napari_medswin._layers import METADATA_KEY, image_to_layer_data
from napari_medswin._orientation import install
from napari_medswin._quality import (
    QC_METADATA_KEY,
    VERDICT_COLORS,
    CaseRow,
    case_images,
    case_label_file,
    review_rows,
    verdict_html,
)

if TYPE_CHECKING:
    import napari.viewer

__all__ = ["REVIEW_TABLE", "ReviewWidget", "case_labels_layer_data"]

log = logging.getLogger(__name__)

#: case table: (row key, column header, cell format)
REVIEW_TABLE = (
    ("case", "case", "{}"),
    ("verdict", "QC", "{}"),
    ("reason", "first reason", "{}"),
)


def case_labels_layer_data(folder: str | Path, case: str) -> tuple[Any, dict[str, Any], str]:
    """The label map of ``case`` as a labels layer: the record's names, model and quality report kept."""
    from medswin.batch.outputs import read_record
    from medswin.errors import ImageReadError
    from medswin.io.readers import read_image
    from napari_medswin._reader import problem_first

    path = case_label_file(folder, case)
    record = read_record(Path(folder), case) or {}
    try:
        labels = read_image(path)
    except ImageReadError as error:
        raise ImageReadError(problem_first(str(error), str(path))) from error
    names = {
        int(entry["value"]): str(name)
        for name, entry in (record.get("labels") or {}).items()
        if isinstance(entry, dict) and isinstance(entry.get("value"), int)
    }
    model = str(record.get("model", ""))
    return image_to_layer_data(
        labels.with_array(labels.array, kind="label"),
        f"{case} [{model}]" if model else case,
        label_names=names or None,
        extra_metadata={"model": model, QC_METADATA_KEY: record.get("qc") or {"checks": []}},
    )


def _chosen(edit: FileEdit) -> Path | None:
    """The folder a FileEdit holds, None while none is chosen (an empty FileEdit reads ".")."""
    text = str(edit.value or "")
    return None if text in ("", ".") else Path(text)


class ReviewWidget(Container):
    """Cases of an output folder by verdict (fail first); a click opens the case's image and labels."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        self._viewer = viewer
        install(viewer)
        self._rows: list[CaseRow] = []
        self._listed: Path | None = None
        self._folder = FileEdit(label="Output folder", mode="d")
        self._images = FileEdit(
            label="Inputs folder",
            mode="d",
            tooltip="Where the input images are: records keep their names, not their paths",
        )
        self._list_button = PushButton(text="List cases")
        self._status = Label(value="")
        self._status.native.setWordWrap(True)
        self._verdict = Label(value="")
        self._verdict.native.setWordWrap(True)
        self._verdict.native.setTextFormat(Qt.TextFormat.RichText)
        self._table = TextTable(REVIEW_TABLE)
        self._table.setWordWrap(True)
        super().__init__(widgets=[self._folder, self._images, self._list_button, self._status, self._verdict])
        self.native.layout().addWidget(self._table)
        self._list_button.changed.connect(self.list_cases)
        self._folder.changed.connect(self.list_cases)
        self._table.cellClicked.connect(lambda row, _column: self.open_case(row))

    @property
    def rows(self) -> list[CaseRow]:
        """The listed cases, in the table's order."""
        return list(self._rows)

    def list_cases(self, value: Any = None) -> None:
        """List the cases of the chosen output folder by verdict."""
        folder = _chosen(self._folder)
        if folder is None:
            show_error("Choose the output folder of a medswin predict run first")
            return
        try:
            self._rows = review_rows(folder)
        except MedSwinError as error:
            self._rows = []
            show_error(str(error))
        self._listed = folder if self._rows else None
        self._table.set_rows([r.as_row() for r in self._rows])
        column = [key for key, _, _ in REVIEW_TABLE].index("verdict")
        for row, case in enumerate(self._rows):
            self._table.item(row, column).setForeground(QColor(VERDICT_COLORS.get(case.verdict, "#000")))
            self._table.item(row, column + 1).setToolTip(case.reason)
        counts = {v: sum(r.verdict == v for r in self._rows) for v in ("fail", "error", "warn", "ok")}
        said = ", ".join(f"{n} {'did not run' if v == 'error' else v}" for v, n in counts.items() if n)
        self._status.value = f"{len(self._rows)} cases in {folder.name}: {said}" if self._rows else ""
        self._verdict.value = ""

    def open_case(self, row: int) -> list[Any]:
        """Open case ``row``'s input image(s) and label map as layers; returns the layers added."""
        from napari_medswin._reader import read_layers

        if self._listed is None or not 0 <= row < len(self._rows):
            show_error("List the cases of an output folder first, then click one")
            return []
        case = self._rows[row]
        if case.verdict == "error":
            self._verdict.value = f"{case.case}: did not run ({case.reason})"
            show_error(f"case {case.case!r} did not run: it has no labels to open ({case.reason})")
            return []
        added: list[Any] = []
        images = _chosen(self._images)
        try:
            for path in case_images(self._listed, case.case, images):
                for data, kwargs, kind in read_layers(str(path)):
                    added.append(getattr(self._viewer, f"add_{kind}")(data, **kwargs))
        except MedSwinError as error:  # the labels still open: the image's absence is said
            show_error(str(error))
        try:
            data, kwargs, _ = case_labels_layer_data(self._listed, case.case)
        except MedSwinError as error:
            show_error(str(error))
            return added
        labels = self._viewer.add_labels(data, **kwargs)
        added.append(labels)
        quality = QualityReport.from_dict(kwargs["metadata"][METADATA_KEY][QC_METADATA_KEY])
        self._verdict.value = verdict_html(quality, case.case)
        self._viewer.layers.selection.active = labels
        return added
