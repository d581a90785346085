"""The Series dock widget: the series of a DICOM study, each opened on request as a layer."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicgui.widgets import Container, FileEdit, Label, PushButton
from napari.utils.notifications import show_error

from medswin.errors import MedSwinError
from napari_medswin._components import TextTable, _report
from napari_medswin._layers import METADATA_KEY
from napari_medswin._orientation import install

if TYPE_CHECKING:
    import napari.viewer


__all__ = ["SERIES_TABLE", "SeriesWidget", "series_rows"]

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
