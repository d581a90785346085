"""The Compare dock widget: Dice, HD95 and NSD of a predicted labels layer against a reference.

A thin magicgui container over :func:`napari_medswin._analysis.compare_structures`, run in the
background with the shared Run/Cancel component.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import Container, FloatSpinBox, create_widget
from napari.utils.notifications import show_error

from medswin.errors import MedSwinError
from napari_medswin._analysis import compare_structures
from napari_medswin._components import BackgroundRun, TextTable, _report
from napari_medswin._layers import image_from_layer
from napari_medswin._writer import label_names_of

if TYPE_CHECKING:
    import napari.viewer


__all__ = ["COMPARE_TABLE", "CompareWidget"]

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


class CompareWidget(Container):
    """Dice, HD95 (mm) and NSD per label of a predicted Labels layer against a reference Labels layer.

    The scoring runs in the background with Compare and Cancel buttons (:class:`BackgroundRun`):
    surface distances of large label maps take a while, and a wrong pair of layers is stopped there.
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        self._viewer = viewer
        self._rows: list[dict[str, Any]] = []
        self._layers_compared: tuple[str, str] = ("", "")
        self._prediction = create_widget(label="Prediction", annotation="napari.layers.Labels")
        self._reference = create_widget(label="Reference", annotation="napari.layers.Labels")
        self._tolerance = FloatSpinBox(label="NSD tolerance (mm)", value=2.0, min=0.0, max=50.0, step=0.5)
        self._background = BackgroundRun("Comparison")
        self._background.run_button.text = "Compare"
        self._status = self._background.status
        self._table = TextTable(COMPARE_TABLE)
        super().__init__(
            widgets=[
                self._prediction,
                self._reference,
                self._tolerance,
                self._background.buttons(),
                self._background.progress,
                self._status,
            ]
        )
        self.native.layout().addWidget(self._table)
        self._background.run_button.changed.connect(self.compare)

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The rows of the score table (label, name, dice, hd95_mm, nsd, empty, pair, prediction_name, reference_name)."""
        return list(self._rows)

    @property
    def running(self) -> bool:
        return self._background.running

    def compare(self) -> Any:
        """Score the chosen layers in a worker thread; returns the worker."""
        if self.running:
            return self._background.worker
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
        tolerance, cancel = float(self._tolerance.value), self._background.cancel_requested.is_set
        progress = self._background.relay.progressed.emit
        self._layers_compared = (prediction.name, reference.name)

        def score() -> list[dict[str, Any]]:  # in the worker thread
            progress(0, 1, "comparing…")
            return compare_structures(
                pred_image, ref_image, names, tolerance, reference_names=ref_names, cancel=cancel
            )

        return self._background.start(score, self._on_result)

    def cancel(self) -> None:
        """Ask the running comparison to stop before its next label (it raises CancelledError)."""
        self._background.cancel()

    def _on_result(self, rows: Sequence[dict[str, Any]]) -> None:
        self._rows = list(rows)
        self._table.set_rows(self._rows)
        dice = [row["dice"] for row in self._rows]
        prediction, reference = self._layers_compared
        pairs = "; ".join(f"{row['label']}: {row['pair']}" for row in self._rows)
        if not dice:
            self._background.done(f"{prediction} vs {reference}: no labels in either")
            return
        differ = [str(row["label"]) for row in self._rows if row["pair"].endswith("(names differ)")]
        warning = (
            f"\nNames differ for label(s) {', '.join(differ)}: check both maps number structures alike"
            if differ
            else ""
        )
        self._background.done(
            f"{prediction} vs {reference}, paired by label value: mean Dice {np.mean(dice):.3f} over "
            f"{len(dice)} labels\n{pairs}{warning}"
        )
