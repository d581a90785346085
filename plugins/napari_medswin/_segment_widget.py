"""The Segment dock widget: run a model on an image layer in the background, see volumes, clean up labels.

A thin magicgui container over the Qt-free :mod:`napari_medswin._segment`; the model menu, Run/Cancel
and the volume table are shared components (:mod:`napari_medswin._components`,
:mod:`napari_medswin._volume_panel`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicgui.widgets import CheckBox, ComboBox, Container, FloatSpinBox, PushButton, create_widget
from napari.utils.notifications import show_error, show_info, show_warning

from medswin.errors import MedSwinError
from medswin.inference.runtime import available_devices
from medswin.models.fit import check_fit
from napari_medswin._analysis import StructureVolume
from napari_medswin._components import BackgroundRun, ModelMenu, _report
from napari_medswin._layers import METADATA_KEY, layer_attributes, layer_to_image, spatial_transform
from napari_medswin._orientation import install
from napari_medswin._segment import (
    SegmentationRunner,
    clean_up_layer_data,
    clean_up_settings,
    model_card,
    prediction_layer_data,
)
from napari_medswin._volume_panel import VolumePanel, erase_undoably

if TYPE_CHECKING:
    import napari.viewer


__all__ = ["SegmentWidget"]


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
        self._run = self._background.run_button
        self._progress, self._status = self._background.progress, self._background.status
        self._volumes_panel = VolumePanel(viewer, actions=[self._clean_up])
        self._volume_layer = self._volumes_panel.layer
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
