"""Qt-free Swin-X2S run for the X-ray widget: two films in, shown upright, a 3D labels layer and bone measurements out.

Turning a film is :func:`medswin.transforms.radiograph.orient_radiograph`'s job (the code
``medswin x2s predict`` runs), the prediction :class:`medswin.inference.x2s.X2SPredictor`'s and the
bone measurements :func:`medswin.metrics.x2s.measure_x2s_structures`'s; this module turns their
inputs and results into napari layer data and table rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from medswin.errors import CancelledError, MedSwinError, MetricInputError
from medswin.io.geometry import reorient
from medswin.io.image import Image
from medswin.transforms.radiograph import View
from napari_medswin._layers import LayerDataTuple, image_to_layer_data, layer_to_image, percentile_window
from napari_medswin._segment import model_key

__all__ = [
    "AUTO_ORIENTATION",
    "FILM_METADATA_KEY",
    "MORPHOMETRY_TABLE",
    "VIEWS",
    "FilmPreview",
    "X2SRunner",
    "bone_anatomy",
    "film_from_layer",
    "film_preview",
    "flipped_orientation",
    "morphometry_table_rows",
    "orientation_choices",
    "panel_note",
    "read_film",
    "same_film",
    "x2s_labels_layer_data",
]

log = logging.getLogger(__name__)

#: the two films, in the order X2SPredictor takes them.
VIEWS: tuple[View, View] = ("ap", "lateral")
#: how the widget names each film (also in the ViewPosition warning).
VIEW_TITLES: dict[str, str] = {"ap": "AP", "lateral": "lateral"}
#: the orientation choice that reads a film as ``medswin x2s predict`` does without ``--ap-orientation``.
AUTO_ORIENTATION = "as the file says"
#: layer metadata key marking the upright films this widget shows (they are not offered as inputs).
FILM_METADATA_KEY = "medswin_x2s_film"
#: morphometry table: (row key, column header, cell format)
MORPHOMETRY_TABLE = (
    ("structure", "bone", "{}"),
    ("parameter", "parameter", "{}"),
    ("value", "value", "{}"),
    ("unit", "unit", "{}"),
    ("status", "status", "{}"),
)
_OPPOSITE = {"L": "R", "R": "L", "A": "P", "P": "A", "H": "F", "F": "H"}
# the body axis a view's film shows across (AP: left-right, lateral: front-back)
_ACROSS = {"ap": ("L", "R"), "lateral": ("P", "A")}


def orientation_choices(view: View) -> list[str]:
    """Orientations a film of ``view`` can be stored in, as ``--ap-orientation``/``--lateral-orientation`` take them.

    ``"L\\F"`` means image x (columns) runs towards the patient's left and image y (rows) towards the
    feet; a film stored transposed reads ``"F\\L"``. The first entry is :data:`AUTO_ORIENTATION`.
    """
    across, along = _ACROSS[view], ("F", "H")
    codes = [f"{x}\\{y}" for x in across for y in along] + [f"{y}\\{x}" for y in along for x in across]
    return [AUTO_ORIENTATION, *codes]


def flipped_orientation(orientation: Sequence[str], view: View, axis: Literal["across", "along"]) -> str:
    """The orientation that shows an upright film mirrored (``"across"``) or upside down (``"along"``).

    The letter of that body axis is reversed (``L\\F`` mirrored is ``R\\F``); the pixels are not touched,
    the film is read the other way round by the same code as before.
    """
    letters = set(_ACROSS[view]) if axis == "across" else {"H", "F"}
    return "\\".join(_OPPOSITE[c] if c in letters else c for c in orientation)


def read_film(path: str | Path, view: View) -> Image:
    """A radiograph file (DICOM DX/CR, MHA, NIfTI, PNG ...) read as ``medswin x2s predict`` reads it.

    Raises:
        MedSwinError: naming the file and the film's role, for unreadable files and images that are
            not one 2D radiograph (a CT series, a volume).
    """
    from medswin.io.readers import read_image
    from medswin.transforms.radiograph import VIEW_ORIENTATION, orient_radiograph
    from napari_medswin._reader import problem_first

    try:
        image = read_image(Path(path))
        # refuses volumes and NaN pixels now; whether its orientation fits the role is film_preview's
        orient_radiograph(image, view, orientation=VIEW_ORIENTATION[view])
    except MedSwinError as error:  # a toast is cut off: the problem first, the file after it
        raise type(error)(f"{VIEW_TITLES[view]} film: {problem_first(str(error), str(path))}") from error
    return image


#: the CLI's words and the model's jargon in notes -> what the panel calls them and what they mean
_PANEL_WORDS: tuple[tuple[str, str], ...] = (
    (r"\(?(medswin x2s predict )?--pixel-spacing MM\)?", "(set the panel's pixel (mm) box)"),
    (r"--ap-orientation", "the AP orientation menu"),
    (r"--lateral-orientation", "the lateral orientation menu"),
    (r"--ap\b", "the AP film"),
    (r"--lateral\b", "the lateral film"),
    (r"from PatientOrientation", "from the file's header"),
    (r"orientation (\S+) given", r"orientation \1 chosen in the panel"),
    (r"pixel spacing ([\d.]+) mm given", r"pixel size \1 mm from the panel"),
    (
        r"(detector|file) pixel spacing, exposure assumed at the model's magnification [\d.]+",
        "the file's pixel size, taken as at the usual tube-to-film distance the model was trained with "
        "(sizes in the result are only as right as that)",
    ),
    (
        r"ImagerPixelSpacing at magnification ([\d.]+) \(model ([\d.]+)\)",
        r"the file's pixel size, corrected for this film's magnification (\1; the model expects \2)",
    ),
    (r"calibrated PixelSpacing \(at the patient\)", "the file's calibrated pixel size (at the patient)"),
)


def panel_note(note: str) -> str:
    """A note of the radiograph reader in the panel's words: its controls, not the CLI's options."""
    import re

    for pattern, replacement in _PANEL_WORDS:
        note = re.sub(pattern, replacement, note)
    return note


def same_film(first: Image, second: Image) -> bool:
    """True when two films are one: the same file, or the same pixels (a copy given for both roles)."""
    paths = [str(image.meta.get("path") or "") for image in (first, second)]
    if paths[0] and paths[0] == paths[1]:
        return True
    a, b = np.asarray(first.array), np.asarray(second.array)
    return a.shape == b.shape and bool(np.array_equal(a, b))


def film_from_layer(data: Any, attributes: Mapping[str, Any], rgb: bool = False) -> Image:
    """The radiograph a 2D image layer holds, in the axis order files are read in (array axis 0 = image x).

    A layer medswin opened goes back to its file's own pixels and DICOM header (exactly what the CLI
    reads); any other layer is read as shown, rows down and columns across. Its ``scale`` is taken as
    the pixel size in mm unless it is napari's default of 1, which says nothing: then the pixel size
    must be given, as for a PNG file.
    """
    from napari_medswin._layers import METADATA_KEY

    array = np.asarray(data, dtype=np.float32)
    name = str(attributes.get("name", ""))
    if rgb:  # an RGB picture of a film: grey is the mean of the colours
        array = array[..., :3].mean(axis=-1)
    if array.ndim != 2:
        raise MedSwinError(
            f"layer {name!r} has shape {array.shape}: a radiograph is one 2D image; choose an X-ray layer"
        )
    ours = bool((attributes.get("metadata") or {}).get(METADATA_KEY))
    image = layer_to_image(array, {k: v for k, v in attributes.items() if k != "features"}, kind="intensity")
    if not ours:
        image = reorient(image, "LP")  # napari's (row, column) are the film's (y, x)
        image.meta["format"] = "layer"
        if np.allclose(np.asarray(attributes.get("scale", (1.0, 1.0)), dtype=float), 1.0):
            image.meta["pixel_spacing_assumed"] = True
    image.meta.setdefault("path", f"layer {name}")
    return image


@dataclass(frozen=True)
class FilmPreview:
    """A film as the widget shows it: upright layer data, the orientation it was read with, what to tell the user.

    Attributes:
        layer: image layer data tuple: rows towards the feet, columns towards the patient's left (AP)
            or posterior (lateral), ``scale`` the pixel size in mm.
        orientation: ``(image x, image y)`` the file was read with (e.g. ``("F", "L")``).
        notes: how the orientation and the pixel size were decided, and a ViewPosition conflict.
        conflict: the ViewPosition warning alone ("" when the DICOM agrees or does not say).
    """

    layer: LayerDataTuple
    orientation: tuple[str, str]
    notes: tuple[str, ...]
    conflict: str


def film_preview(
    image: Image,
    view: View,
    orientation: str | None = None,
    pixel_mm: float | None = None,
    *,
    name: str | None = None,
    left_mm: float = 0.0,
) -> FilmPreview:
    """The upright film of ``view`` read with ``orientation`` (None: as the file says), for checking by eye.

    Args:
        image: the radiograph (:func:`read_film`, :func:`film_from_layer`).
        view: ``"ap"`` or ``"lateral"``.
        orientation: ``"L\\F"`` ...; None reads the DICOM PatientOrientation, else the standard display.
        pixel_mm: pixel size in mm when the file's is missing or wrong (None: the file's).
        name: layer name (default ``"AP film"`` / ``"lateral film"``).
        left_mm: world position (mm) of the film's left edge, so the two films lie side by side.
    """
    from medswin.inference.x2s import view_position_conflict
    from medswin.transforms.radiograph import orient_radiograph

    title = VIEW_TITLES[view]
    conflict = view_position_conflict(image, view, roles=("the AP film", "the lateral film")) or ""
    try:
        film = orient_radiograph(image, view, orientation=orientation)  # frame LPI: the standard display
    except MedSwinError as error:  # e.g. a lateral film's P\F given as the AP: its ViewPosition says why
        from napari_medswin._reader import problem_first

        where = str(image.meta.get("path", ""))
        problem = problem_first(str(error), where) if where else str(error)
        why = f" ({problem_first(conflict, where) if where else conflict})" if conflict else ""
        raise type(error)(f"{title} film: {problem}{why}") from error
    data = np.ascontiguousarray(film.array.T)  # rows: image y (to the feet), columns: image x
    if pixel_mm:
        spacing, size_note = (float(pixel_mm), float(pixel_mm)), f"pixel size {pixel_mm:g} mm given"
    elif image.meta.get("pixel_spacing_assumed"):
        spacing, size_note = (1.0, 1.0), "no pixel size in the file: set one"
    else:
        spacing, size_note = (
            film.spacing,
            f"pixel size {film.spacing[0]:.4g} × {film.spacing[1]:.4g} mm from the file",
        )
    kwargs = {
        "name": name or f"{title} film",
        "scale": [spacing[1], spacing[0]],
        "translate": [0.0, float(left_mm)],
        "colormap": "gray",
        "contrast_limits": list(percentile_window(data)),
        "metadata": {FILM_METADATA_KEY: view},
    }
    notes = (film.note, size_note, *([conflict] if conflict else []))
    return FilmPreview((data, kwargs, "image"), film.orientation, notes, conflict)


class X2SRunner:
    """Runs the shared :class:`~medswin.inference.x2s.X2SPredictor`, keeping it loaded between runs.

    The predictor is reused while the model (file and its modification time) and the device stay the
    same, as :class:`~napari_medswin._segment.SegmentationRunner` does for volume models.
    """

    def __init__(self) -> None:
        self._key: tuple[str, float, str] | None = None
        self._predictor: Any = None

    @property
    def card(self) -> Any:
        """The loaded model's card (None before the first run)."""
        return None if self._predictor is None else self._predictor.card

    def run(
        self,
        ap: Image,
        lateral: Image,
        spec: str,
        *,
        device: str = "cpu",
        orientations: tuple[str | None, str | None] = (None, None),
        pixel_spacing: tuple[float | None, float | None] = (None, None),
        progress: Callable[[int, int, str], None] | None = None,
        cancel: Callable[[], bool] | None = None,
    ) -> Any:
        """The :class:`~medswin.inference.x2s.X2SPrediction` of one film pair with model ``spec``.

        ``orientations`` and ``pixel_spacing`` are ``medswin x2s predict``'s ``--ap-orientation``,
        ``--lateral-orientation`` and ``--pixel-spacing``. Raises ``CancelledError`` when ``cancel()``
        turns true, and medswin errors (naming the file) for unusable models or films.
        """
        from medswin.inference.x2s import X2SPredictor

        if progress is not None:
            progress(0, 1, f"loading {Path(spec).name or spec}")
        key = model_key(spec, device)
        if key != self._key:
            self._predictor, self._key = None, None
            self._predictor = X2SPredictor(spec, device=device)
            self._key = key
        if cancel is not None and cancel():
            raise CancelledError("biplanar prediction cancelled after loading the model")
        return self._predictor.predict(
            ap,
            lateral,
            orientations=orientations,
            pixel_spacing=pixel_spacing,
            progress=progress,
            cancel=cancel,
        )


def x2s_labels_layer_data(
    prediction: Any, card: Any, name: str = "Swin-X2S", films: Mapping[str, str] | None = None
) -> LayerDataTuple:
    """The labels layer of an X2S prediction: in physical space as ``medswin x2s predict`` writes it.

    The volume's own geometry (axes LPI, the output voxel size, centred on the isocentre) goes through
    :func:`~napari_medswin._layers.image_to_layer_data`, so the layer matches the CLI's file opened
    with medswin; names and colours come from the model card. The layer is ``"<name> [<card id>]"``;
    its metadata keeps the model, its intended use, the two film files (``films``: view -> path),
    which the volume CSV reports as its source, and the prediction's quality report.
    """
    from napari_medswin._quality import quality_metadata
    from napari_medswin._segment import intended_use

    sources = [f"{VIEW_TITLES[v]} {films[v]}" for v in VIEWS if (films or {}).get(v)]
    return image_to_layer_data(
        prediction.labels,
        f"{name} [{card.id}]",
        label_names=card.label_names(),
        colors=card.colors,
        extra_metadata={
            "model": card.id,
            "intended_use": intended_use(card),
            "sources": sources,
            **quality_metadata(prediction),
        },
    )


def bone_anatomy(names: Mapping[int, str]) -> Any:
    """The bones with clinical parameters among a label map (:mod:`medswin.metrics.x2s_anatomy`), else None."""
    from medswin.metrics.x2s_anatomy import anatomy_from_labels

    try:
        anatomy = anatomy_from_labels(names)
    except MetricInputError:
        return None
    return anatomy if anatomy.structures() else None


def _value_text(value: Any, kind: str) -> str:
    if value is None:
        return "—"
    if kind == "scalar":
        return f"{value:.1f}"
    digits = 3 if kind == "axis" else 1
    return "(" + ", ".join(f"{v:.{digits}f}" for v in value) + ")"


def morphometry_table_rows(measurements: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """:func:`~medswin.metrics.x2s.measure_x2s_structures` rows as table text: numbers to 0.1 mm/degree,
    points (LPS mm, about the isocentre) and axes as ``(x, y, z)``, a failure with its reason."""
    return [
        {
            "structure": row["structure"],
            "parameter": row["parameter"],
            "value": _value_text(row["value"], row["kind"]),
            "unit": row["unit"] or ("direction" if row["kind"] == "axis" else ""),
            "status": "ok" if row["status"] == "ok" else f"{row['status']}: {row['reason']}",
        }
        for row in measurements
    ]
