"""The Swin-X2S dock widget: an AP and a lateral radiograph in, a 3D labels layer, its volumes and bone measurements out.

A thin magicgui container over :mod:`napari_medswin._x2s`; the model menu, the Run/Cancel worker
and the volume table are the Segment widget's (:class:`~napari_medswin._components.ModelMenu`,
:class:`~napari_medswin._components.BackgroundRun`, :class:`~napari_medswin._volume_panel.VolumePanel`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicgui.widgets import ComboBox, Container, FileEdit, FloatSpinBox, Label, PushButton
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info, show_warning

from medswin.errors import MedSwinError
from medswin.inference.runtime import available_devices
from medswin.metrics.x2s import measure_x2s_structures
from napari_medswin._components import BackgroundRun, ModelMenu, TextTable, _report
from napari_medswin._layers import image_from_layer, layer_attributes
from napari_medswin._orientation import anterior_view, install
from napari_medswin._reader import problem_first
from napari_medswin._segment import model_card
from napari_medswin._volume_panel import VolumePanel
from napari_medswin._writer import label_names_of
from napari_medswin._x2s import (
    AUTO_ORIENTATION,
    FILM_METADATA_KEY,
    MORPHOMETRY_TABLE,
    VIEW_TITLES,
    VIEWS,
    FilmPreview,
    X2SRunner,
    bone_anatomy,
    film_from_layer,
    film_preview,
    flipped_orientation,
    morphometry_table_rows,
    orientation_choices,
    panel_note,
    read_film,
    same_film,
    x2s_labels_layer_data,
)

if TYPE_CHECKING:
    import napari.viewer

__all__ = ["X2SWidget"]

log = logging.getLogger(__name__)

#: where the films come from
FROM_FILES, FROM_LAYERS = "files", "open image layers"
# gap (mm) between the AP and the lateral film shown side by side
_FILM_GAP_MM = 20.0
_NO_BONES = (
    "No bones with clinical parameters among these labels (femur_left/right, hip_left/right, "
    "vertebrae_<level>, rib_<side>_<n>)."
)


def _film_layers(widget: Any = None) -> list[tuple[str, Any]]:
    """2D image layers of the viewer that may be radiographs (not the upright films this widget shows)."""
    from napari.layers import Image as ImageLayer
    from napari.utils._magicgui import find_viewer_ancestor

    viewer = find_viewer_ancestor(widget.native) if widget is not None else None
    if viewer is None:
        return []
    return [
        (layer.name, layer)
        for layer in viewer.layers
        if isinstance(layer, ImageLayer)
        and FILM_METADATA_KEY not in layer.metadata
        and layer.ndim == 2  # napari counts an RGB picture's colour axis out
    ]


def films_path(conflict: str) -> str:
    """The file a ViewPosition warning (``"<path>: DICOM ViewPosition ..."``) names first."""
    return conflict.split(": DICOM ViewPosition", 1)[0]


def _pixel_text(image: Any) -> str:
    """What the pixel box says at its lowest value: the file's pixel size it stands for, or that there is none."""
    if image.meta.get("pixel_spacing_assumed"):
        return "none in file: set"
    return f"from file ({min(image.spacing):.3g} mm)"


def _done_text(name: str, waited_s: float, timings: dict[str, float]) -> str:
    """The status after a run: what the user waited (click to labels), and the model's own share."""
    model = timings.get("total")
    share = f" (model {model:.1f} s)" if model is not None else ""
    return f"{name}: done in {waited_s:.1f} s{share}"


class X2SWidget(Container):
    """Swin-X2S from two X-rays: pick an AP and a lateral film, check them upright, predict 3D labels."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        self._viewer = viewer
        install(viewer)
        self._runner = X2SRunner()
        self._background = BackgroundRun("Swin-X2S prediction")
        self._films: dict[str, Any] = {}  # view -> the upright film layer shown
        self._previews: dict[str, FilmPreview] = {}
        self._read: dict[str, tuple[tuple[str, float], Any]] = {}  # view -> ((path, mtime), Image)
        self._results: list[Any] = []  # labels layers this widget added (3D, in patient space)
        self._advice = ""  # the last pair warning shown (not repeated on every redraw)
        self._swapping = False
        self._started = 0.0
        self._readers: dict[str, tuple[tuple[str, float], Any]] = {}  # view -> (file key, worker)
        self.morphometry: list[dict[str, Any]] = []  # rows of measure_x2s_structures, last measured

        self._source = ComboBox(label="Films from", choices=[FROM_FILES, FROM_LAYERS], value=FROM_FILES)
        self._file = {v: FileEdit(label=f"{VIEW_TITLES[v]} file", mode="r") for v in VIEWS}
        self._layer = {v: ComboBox(label=f"{VIEW_TITLES[v]} layer", choices=_film_layers) for v in VIEWS}
        self._orientation = {
            v: ComboBox(label=f"{VIEW_TITLES[v]} orientation", choices=orientation_choices(v)) for v in VIEWS
        }
        self._mirror = {v: PushButton(text=f"Mirror {VIEW_TITLES[v]} ↔") for v in VIEWS}
        self._upside_down = {v: PushButton(text=f"Turn {VIEW_TITLES[v]} upside down ↕") for v in VIEWS}
        self._pixel = {
            v: FloatSpinBox(
                label=f"{VIEW_TITLES[v]} pixel (mm)",
                value=0.0,
                min=0.0,
                max=10.0,
                step=0.001,
                tooltip="Left at its lowest, the file's pixel size is used; needed for PNG/JPEG films "
                "and plain layers",
            )
            for v in VIEWS
        }
        for box in self._pixel.values():  # 0 means "the file's": say so instead of showing 0.000
            box.native.setSpecialValueText("from file")
        self._swap = PushButton(text="Swap AP ↔ lateral", enabled=False)
        self._show_films = PushButton(text="Show the films", visible=False)
        self._notes = {v: Label(value="") for v in VIEWS}
        self._models = ModelMenu(radiographs=True)
        self._device = ComboBox(label="Device", choices=available_devices())
        self._measure = PushButton(text="Measure bones of this layer")
        self._volumes_panel = VolumePanel(viewer, actions=[self._measure])
        self._table = self._volumes_panel.table
        self._morphometry_note = Label(value="")
        self._morphometry_table = TextTable(MORPHOMETRY_TABLE)
        explanation = Label(
            value="Films are shown upright as medswin reads them: feet down; AP with the patient's left "
            "on the right, lateral with the back on the right. If one looks wrong, correct its orientation."
        )
        per_view = []
        for v in VIEWS:
            self._notes[v].native.setWordWrap(True)
            flips = Container(
                widgets=[self._mirror[v], self._upside_down[v]], layout="horizontal", labels=False
            )
            per_view += [
                self._file[v],
                self._layer[v],
                self._orientation[v],
                flips,
                self._pixel[v],
                self._notes[v],
            ]
        for label in (explanation, self._models.card, self._morphometry_note):
            label.native.setWordWrap(True)
        super().__init__(
            widgets=[
                self._source,
                explanation,
                *per_view,
                self._models.model,
                self._models.checkpoint,
                self._models.card,
                self._device,
                self._swap,
                self._background.buttons(),
                self._background.progress,
                self._background.status,
                self._models.show_missing,
                self._models.missing,
                self._volumes_panel,
                self._morphometry_note,
                self._show_films,
            ]
        )
        self.native.layout().addWidget(self._morphometry_table)
        self._morphometry_table.setVisible(False)
        self._models.update()
        self._source.changed.connect(self._on_source_changed)
        for v in VIEWS:
            for control in (self._file[v], self._layer[v], self._orientation[v], self._pixel[v]):
                control.changed.connect(lambda _value=None, view=v: self.show_film(view))
            self._mirror[v].changed.connect(lambda _value=None, view=v: self.flip(view, "across"))
            self._upside_down[v].changed.connect(lambda _value=None, view=v: self.flip(view, "along"))
        self._background.run_button.changed.connect(self.run)
        self._swap.changed.connect(self.swap)
        self._show_films.changed.connect(lambda: self.show_films(not self._films_shown()))
        self._measure.changed.connect(self.measure)
        self._on_source_changed()

    # ------------------------------------------------------------------ films
    @property
    def running(self) -> bool:
        return self._background.running

    def _on_source_changed(self, value: Any = None) -> None:
        files = self._source.value == FROM_FILES
        for v in VIEWS:
            self._file[v].visible = files
            self._layer[v].visible = not files
        for v in VIEWS:
            self.show_film(v)

    def _orientation_of(self, view: str) -> str | None:
        chosen = str(self._orientation[view].value)
        return None if chosen == AUTO_ORIENTATION else chosen

    def _pixel_of(self, view: str) -> float | None:
        return float(self._pixel[view].value) or None

    @property
    def reading(self) -> bool:
        """True while a chosen film file is being read in the background."""
        return bool(self._readers)

    def _file_key(self, view: str) -> tuple[str, float] | None:
        path = Path(str(self._file[view].value or ""))
        if not path.is_file():
            return None
        return (str(path.resolve()), path.stat().st_mtime)

    def _cached(self, view: str) -> Any:
        """The film of ``view`` if it is read already (files) or a layer (layers); never reads a file."""
        if self._source.value != FROM_FILES:
            return self._read_quietly(view)
        key, cached = self._file_key(view), self._read.get(view)
        return cached[1] if key is not None and cached is not None and cached[0] == key else None

    def _read_in_background(self, view: str, key: tuple[str, float]) -> None:
        """Read a chosen file in a worker (a large film takes seconds); show it when read."""
        if self._readers.get(view, (None,))[0] == key:
            return  # already being read

        def read() -> Any:  # worker thread
            return read_film(key[0], view)  # type: ignore[arg-type]

        def done(image: Any) -> None:
            if self._file_key(view) == key:  # still the chosen file
                self._read[view] = (key, image)
                self.show_film(view)

        def failed(error: BaseException) -> None:
            if self._file_key(view) != key:
                return
            self._remove_film(view)
            self._notes[view].value = f"⚠ {error}"
            _report(error)
            self._check_pair()

        def finished() -> None:
            if self._readers.get(view, (None,))[0] == key:
                self._readers.pop(view, None)

        worker = create_worker(read, _start_thread=False, _ignore_errors=True)
        worker.returned.connect(done)
        worker.errored.connect(failed)
        worker.finished.connect(finished)
        self._readers[view] = (key, worker)
        self._notes[view].value = "reading the film…"
        worker.start()

    def film(self, view: str) -> Any:
        """The radiograph chosen for ``view`` (an Image), or None when none is chosen yet.

        A file not read yet is read here, in the calling thread; the panel reads chosen files in
        the background (:meth:`show_film`), so Run finds them read.
        """
        if self._source.value == FROM_FILES:
            key = self._file_key(view)
            if key is None:
                return None
            cached = self._read.get(view)
            if cached is None or cached[0] != key:  # read once, not again for each orientation tried
                self._read.pop(view, None)
                self._read[view] = (key, read_film(key[0], view))  # type: ignore[arg-type]
            return self._read[view][1]
        layer = self._layer[view].value
        if layer is None:
            return None
        return film_from_layer(layer.data, layer_attributes(layer), rgb=bool(layer.rgb))

    def show_film(self, view: str) -> FilmPreview | None:
        """Read the chosen film of ``view`` and show it upright with the orientation used; returns what is shown.

        New or re-read films make the last result's status, numbers and tables stale: they are
        cleared, and the films are shown again (the earlier 3D results hidden, kept as layers).
        """
        if self._swapping:
            return None  # swap() shows both films once both roles are exchanged
        self._clear_result()
        self.show_films(True)
        if self._source.value == FROM_FILES:
            key = self._file_key(view)
            if key is not None and self._cached(view) is None:
                self._read_in_background(view, key)  # shown when read: the viewer does not freeze
                return None
        try:
            image = self.film(view)
            if image is None:
                self._remove_film(view)
                self._notes[view].value = ""
                return None
            left = 0.0
            if view == "lateral" and "ap" in self._films:
                ap = self._films["ap"]
                left = float(ap.data.shape[1] * ap.scale[1] + _FILM_GAP_MM)
            preview = film_preview(
                image, view, self._orientation_of(view), self._pixel_of(view), left_mm=left
            )  # type: ignore[arg-type]
        except MedSwinError as error:
            self._remove_film(view)
            self._notes[view].value = f"⚠ {error}"
            show_error(str(error))
            self._check_pair()
            return None
        self._previews[view] = preview
        self._notes[view].value = "; ".join(panel_note(n) for n in preview.notes)
        self._pixel[view].native.setSpecialValueText(_pixel_text(image))
        data, kwargs, _ = preview.layer
        layer = self._films.get(view)
        if layer is not None and layer in self._viewer.layers:
            layer.data = data
            for key in ("scale", "translate", "contrast_limits", "name"):
                setattr(layer, key, kwargs[key])
        else:
            self._films[view] = self._viewer.add_image(data, **kwargs)
            self._viewer.reset_view()  # a new film in sight, whatever was shown before
        lateral = self._films.get("lateral")
        if view == "ap" and lateral is not None and lateral in self._viewer.layers:
            lateral.translate = [
                0.0,
                float(data.shape[1] * kwargs["scale"][1] + _FILM_GAP_MM),
            ]  # beside the AP
        self._check_pair()
        return preview

    def _clear_result(self) -> None:
        if self.running:
            return
        self._background.progress.value = 0
        self._background.status.value = ""
        self._volumes_panel.clear()
        self._show_morphometry("", [])
        self._morphometry_note.value = ""

    def _films_shown(self) -> bool:
        return any(layer.visible for layer in self._films.values() if layer in self._viewer.layers)

    def show_films(self, films: bool) -> None:
        """Films (2D, upright) or the 3D results (anterior view), never both: they share no coordinates.

        The films are pictures, not patient space; drawn together, a 3D result would lie over them at
        an unrelated place.
        """
        results = [layer for layer in self._results if layer in self._viewer.layers]
        self._results = results
        for layer in self._films.values():
            layer.visible = films
        for layer in results:
            layer.visible = not films
        self._show_films.visible = bool(results)
        self._show_films.text = "Show the 3D result" if films else "Show the films"
        if films or not results:
            if films and self._viewer.dims.ndisplay == 3:
                self._viewer.dims.ndisplay = 2
            return
        if self._viewer.dims.ndisplay == 3:
            anterior_view(self._viewer)
        else:
            self._viewer.dims.ndisplay = 3  # medswin's camera turns this into the anterior view
        try:  # fit the results, not the hidden films' plane
            self._viewer.fit_to_view(layers=results)
        except TypeError:  # a napari without the layers argument
            self._viewer.reset_view(reset_camera_angle=False)

    def _check_pair(self) -> None:
        """Enable Swap for two different films; warn about one film given twice or roles the headers contradict."""
        if self._swapping:
            return
        films = {v: self._cached(v) for v in VIEWS}
        both = all(f is not None for f in films.values())
        same = both and same_film(films["ap"], films["lateral"])
        self._swap.enabled = both and not same
        if same:
            where = films["ap"].meta.get("path", "")
            advice = (
                f"The AP and the lateral film are the same image ({where}): choose the other view's film "
                "for one of them"
            )
        else:
            conflicts = [self._previews[v].conflict for v in VIEWS if v in self._previews]
            conflicts = [c for c in conflicts if c]
            advice = "; ".join(problem_first(c, str(films_path(c))) for c in conflicts)
            if advice and both:
                advice += ". 'Swap AP ↔ lateral' exchanges them"
        if advice and advice != self._advice:
            show_warning(advice)
        self._advice = advice

    def _read_quietly(self, view: str) -> Any:
        try:
            return self.film(view)
        except MedSwinError:
            return None

    def swap(self) -> None:
        """Give the AP film the lateral's role and the lateral the AP's (orientations back to the files' own)."""
        self._swapping = True
        try:
            if self._source.value == FROM_FILES:
                ap, lateral = self._file["ap"].value, self._file["lateral"].value
                other = {"ap": "lateral", "lateral": "ap"}
                self._read = {other[v]: entry for v, entry in self._read.items()}  # read once, kept
                self._file["ap"].value, self._file["lateral"].value = lateral, ap
            else:
                ap, lateral = self._layer["ap"].value, self._layer["lateral"].value
                self._layer["ap"].value, self._layer["lateral"].value = lateral, ap
            pixels = (self._pixel["ap"].value, self._pixel["lateral"].value)
            self._pixel["ap"].value, self._pixel["lateral"].value = pixels[1], pixels[0]
            for v in VIEWS:
                self._orientation[v].value = AUTO_ORIENTATION
        finally:
            self._swapping = False
        self._advice = ""
        for v in VIEWS:
            self.show_film(v)

    def _remove_film(self, view: str) -> None:
        self._previews.pop(view, None)
        layer = self._films.pop(view, None)
        if layer is not None and layer in self._viewer.layers:
            self._viewer.layers.remove(layer)

    def flip(self, view: str, axis: str) -> None:
        """Mirror (``"across"``) or turn upside down (``"along"``) how the film of ``view`` is read."""
        preview = self._previews.get(view)
        if preview is None:
            show_info(f"Choose the {VIEW_TITLES[view]} film first")
            return
        self._orientation[view].value = flipped_orientation(preview.orientation, view, axis)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ running
    def run(self) -> Any:
        """Predict the 3D labels of the chosen film pair in a worker thread; returns the worker."""
        if self.running:
            return self._background.worker
        try:
            spec = self._models.spec()
            card = model_card(spec)
            if card.radiographs is None:
                raise MedSwinError(
                    f"model {card.id!r} segments volumes, not X-ray pairs: use the Segment panel for it"
                )
            films = {v: self.film(v) for v in VIEWS}
            for v, image in films.items():
                if image is None:
                    raise MedSwinError(f"Choose the {VIEW_TITLES[v]} film first ({self._source.value})")
                if image.meta.get("pixel_spacing_assumed") and self._pixel_of(v) is None:
                    raise MedSwinError(
                        f"{VIEW_TITLES[v]} film ({image.meta.get('format', 'image')}) carries no pixel size: "
                        f"set '{VIEW_TITLES[v]} pixel (mm)' to its detector pixel size"
                    )
        except MedSwinError as error:
            _report(error)
            return None
        self._started = time.monotonic()
        self._background.paths = [str(image.meta.get("path", "")) for image in films.values()]
        runner, device = self._runner, str(self._device.value)
        orientations = (self._orientation_of("ap"), self._orientation_of("lateral"))
        pixels = (self._pixel_of("ap"), self._pixel_of("lateral"))
        progress, cancel = self._background.relay.progressed.emit, self._background.cancel_requested.is_set
        anatomy = bone_anatomy(card.labels)
        self._last_films = films

        def predict() -> tuple[Any, Any, Any]:  # in the worker thread
            prediction = runner.run(
                films["ap"],
                films["lateral"],
                spec,
                device=device,
                orientations=orientations,
                pixel_spacing=pixels,
                progress=progress,
                cancel=cancel,
            )
            measured = None
            if anatomy is not None:
                progress(1, 1, "measuring bones")
                measured = measure_x2s_structures(prediction.labels, anatomy)
            return prediction, runner.card, measured

        return self._background.start(predict, lambda result: self._on_result(*result))

    def cancel(self) -> None:
        """Ask the running prediction to stop before its next step."""
        self._background.cancel()

    def _on_result(self, prediction: Any, card: Any, measured: list[dict[str, Any]] | None) -> None:
        films = {v: str(image.meta.get("path", "")) for v, image in self._last_films.items()}
        data, kwargs, _ = x2s_labels_layer_data(prediction, card, films=films)
        layer = self._viewer.add_labels(data, **kwargs)  # a re-run adds a layer: earlier ones may hold edits
        self._results.append(layer)
        self._background.done(_done_text(layer.name, time.monotonic() - self._started, prediction.timings))
        for v in VIEWS:
            self._notes[v].value = "; ".join(panel_note(n) for n in prediction.notes.get(v, []))
        self.show_films(False)
        self._volumes_panel.show_layer(layer)
        self._show_morphometry(layer.name, measured)

    # ------------------------------------------------------------------ measurements
    @property
    def volumes(self) -> list[Any]:
        """The rows of the volume table (label, name, voxels, mL, centroid)."""
        return self._volumes_panel.volumes

    def measure(self) -> Any:
        """Measure the bones of the 'Volumes of' labels layer (e.g. after edits) in a worker thread; returns the worker."""
        layer = self._volumes_panel.layer.value
        if layer is None:
            show_error("Choose a labels layer under 'Volumes of' first")
            return None
        if self.running:
            return self._background.worker
        anatomy = bone_anatomy(label_names_of({"metadata": layer.metadata, "features": layer.features}))
        if anatomy is None:
            self._show_morphometry(layer.name, None)
            return None
        try:
            labels = image_from_layer(layer, kind="label")
        except MedSwinError as error:
            _report(error)
            return None
        name = layer.name
        return self._background.start(
            lambda: measure_x2s_structures(labels, anatomy),
            lambda rows: (
                self._show_morphometry(name, rows),
                self._background.done(f"{name}: bones measured"),
            ),
        )

    def _show_morphometry(self, layer_name: str, rows: list[dict[str, Any]] | None) -> None:
        self.morphometry = list(rows or [])
        self._morphometry_table.set_rows(morphometry_table_rows(self.morphometry))
        self._morphometry_table.setVisible(
            bool(self.morphometry)
        )  # the volume table keeps the room otherwise
        if rows is None:
            self._morphometry_note.value = _NO_BONES
        elif not rows:
            self._morphometry_note.value = f"Bone measurements of {layer_name}: none of its bones is present."
        else:
            self._morphometry_note.value = (
                f"Bone measurements of {layer_name} (mm and degrees; points in mm about the isocentre):"
            )
