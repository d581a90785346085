"""The Window presets dock widget: CT windows (soft tissue, lung, bone, brain...) or percentiles."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from magicgui.widgets import ComboBox, Container, create_widget

from napari_medswin._layers import (
    AUTO_WINDOW,
    CT_WINDOW_PRESETS,
    METADATA_KEY,
    looks_like_ct,
    percentile_window,
)

if TYPE_CHECKING:
    import napari.viewer


__all__ = ["WindowWidget"]


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
        ct = looks_like_ct(str((info.get("meta") or {}).get("modality", "")), layer.data)
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
