"""The one mapping between medswin's :class:`~medswin.io.image.Image` and napari layer data.

How geometry is shown (one rule for image and labels layers alike):

- napari's world frame is the patient's **LPS** frame in millimetres, axes in reversed order
  ``(z, y, x)`` = (superior, posterior, left), the same order napari uses for array axes.
- Before display the voxels are **reoriented** (an exact permutation/flip of array axes, no
  interpolation, :func:`medswin.io.reorient`) so that array axis 0 runs towards S, axis 1 towards P
  and axis 2 towards L ("SPL"; "PL" for 2D). The slider then walks axial slices from inferior to
  superior, anterior is at the top and the patient's right on the left of the screen: the
  radiological convention, whatever the file's own axis order.
- ``scale`` is the spacing (mm) and ``translate`` the origin (mm, centre of voxel 0) of that
  reoriented grid. For an oblique acquisition the small remaining rotation goes into ``rotate``;
  napari's 3D view applies it exactly, its 2D view draws each slice without the out-of-slice tilt
  (napari says so with a "non-orthogonal slicing" warning). Nothing is resampled.
- ``metadata["medswin"]`` keeps what a round trip needs: the file's own orientation code (to undo
  the reorientation exactly before writing or predicting) and the source ``Image.meta`` (path,
  modality, NIfTI header, DICOM source files for DICOM-SEG).

Multi-channel images (e.g. BraTS T1/T1c/T2/FLAIR in one file) become one 4D layer whose leading
axis is the channel (scale 1), so a layer converts back into the same multi-channel ``Image``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np

from medswin.errors import GeometryError
from medswin.io.anatomy import structure_colors
from medswin.io.geometry import reorient
from medswin.io.image import Image, lps_to_ras
from medswin.io.modality import looks_like_hounsfield, modality_code

__all__ = [
    "AUTO_WINDOW",
    "CT_SOFT_TISSUE_WINDOW",
    "CT_WINDOW_PRESETS",
    "DISPLAY_ORIENTATION",
    "METADATA_KEY",
    "LayerDataTuple",
    "default_window_preset",
    "display_window",
    "is_ct",
    "looks_like_ct",
    "window_presets",
    "image_from_layer",
    "image_to_layer_data",
    "label_colormap",
    "label_features",
    "percentile_window",
    "layer_attributes",
    "layer_to_image",
    "spatial_transform",
]

LayerDataTuple = tuple[Any, dict[str, Any], str]

#: axis codes of the displayed arrays (RAS-style: the direction each array axis runs towards).
DISPLAY_ORIENTATION: dict[int, str] = {3: "SPL", 2: "PL"}
#: key of the layer metadata dict holding what converts a layer back into an Image.
METADATA_KEY = "medswin"
#: CT soft-tissue window, width 400 HU at level 40 HU, as (low, high) HU.
CT_SOFT_TISSUE_WINDOW: tuple[float, float] = (-160.0, 240.0)
#: MR and other modalities: these percentiles of the intensities bound the display window.
_PERCENTILE_WINDOW = (0.5, 99.5)
_WINDOW_SAMPLE_VOXELS = 2_000_000
# display colour of label values the model card does not name (e.g. painted by hand)
_UNNAMED_LABEL_RGBA = (0.8, 0.8, 0.8, 1.0)


def _world_reversal(dims: int) -> np.ndarray:
    """Permutation matrix between LPS (x, y, z) and napari's world order (z, y, x); its own inverse."""
    return np.eye(dims)[::-1]


def _source_meta(image: Image) -> dict[str, Any]:
    return {
        "orientation": image.orientation,
        "spatial_dims": image.spatial_dims,
        "kind": image.kind,
        "meta": copy.deepcopy(image.meta),
    }


def _geometry_kwargs(display: Image) -> dict[str, Any]:
    """``scale``/``translate`` (and ``rotate`` when oblique) of a reoriented image, in world order."""
    flip = _world_reversal(display.spatial_dims)
    # after reorientation array axis i runs along world axis i: the linear part is spacing times a
    # rotation that is exactly the identity unless the grid is oblique
    linear = flip @ display.direction
    kwargs: dict[str, Any] = {
        "scale": [float(s) for s in display.spacing],
        "translate": [float(t) for t in flip @ np.asarray(display.origin)],
        "axis_labels": list(DISPLAY_ORIENTATION[display.spatial_dims]),  # sliders named S, P, L
    }
    if not np.array_equal(linear, np.eye(display.spatial_dims)):
        kwargs["rotate"] = linear
    if display.num_channels > 1:
        kwargs["scale"] = [1.0, *kwargs["scale"]]
        kwargs["translate"] = [0.0, *kwargs["translate"]]
        kwargs["axis_labels"] = ["channel", *kwargs["axis_labels"]]
        if "rotate" in kwargs:
            padded = np.eye(display.spatial_dims + 1)
            padded[1:, 1:] = kwargs["rotate"]
            kwargs["rotate"] = padded
    return kwargs


def _window(level: float, width: float) -> tuple[float, float]:
    return (level - width / 2.0, level + width / 2.0)


#: CT window presets, name -> (low, high) HU, from the usual (level, width) pairs.
CT_WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    "soft tissue": _window(40, 400),
    "liver": _window(60, 160),
    "mediastinum": _window(50, 350),
    "lung": _window(-600, 1500),
    "bone": _window(400, 1800),
    "brain": _window(40, 80),
    "stroke": _window(32, 8),
}
#: the preset that suits a DICOM BodyPartExamined (CT): anything else gets soft tissue.
_BODY_PART_PRESETS: dict[str, str] = {
    "HEAD": "brain",
    "BRAIN": "brain",
    "SKULL": "brain",
    "CHEST": "mediastinum",
    "THORAX": "mediastinum",
    "LUNG": "lung",
    "SPINE": "bone",
    "CSPINE": "bone",
    "TSPINE": "bone",
    "LSPINE": "bone",
    "EXTREMITY": "bone",
    "HIP": "bone",
    "KNEE": "bone",
    "LIVER": "liver",
}
#: the preset name for percentile windows (MR and other modalities).
AUTO_WINDOW = "auto (0.5-99.5 %)"


def looks_like_ct(modality: str, values: Any) -> bool:
    """CT by its DICOM Modality when the file names one, else by HU-like intensities (a NIfTI says nothing).

    The intensities decide by :func:`medswin.io.modality.looks_like_hounsfield`, the rule the fit
    check uses too, so a CT cropped to the body (no air) gets CT windows here and no warning there.
    """
    if str(modality).strip():
        return modality_code(modality) == "CT"
    return looks_like_hounsfield(values)


def is_ct(image: Image) -> bool:
    """CT by ``meta["modality"]`` (DICOM, phantoms), or, for files that do not say, by HU-like intensities."""
    return looks_like_ct(str(image.meta.get("modality", "")), image.array)


def window_presets(image: Image) -> list[str]:
    """The window presets offered for ``image``: CT presets (HU) for CT, else the percentile window."""
    return [*CT_WINDOW_PRESETS, AUTO_WINDOW] if is_ct(image) else [AUTO_WINDOW]


def default_window_preset(image: Image) -> str:
    """The preset shown first: by the DICOM BodyPartExamined for CT (head: brain, chest: mediastinum...)."""
    if not is_ct(image):
        return AUTO_WINDOW
    body_part = str((image.meta.get("dicom") or {}).get("BodyPartExamined", "")).upper().replace(" ", "")
    return _BODY_PART_PRESETS.get(body_part, "soft tissue")


def display_window(image: Image, preset: str | None = None) -> tuple[float, float]:
    """Contrast limits for showing ``image``: a CT window preset (HU) or intensity percentiles.

    Args:
        image: the image; CT is recognised by :func:`is_ct`.
        preset: a name from :func:`window_presets`; default :func:`default_window_preset` (the CT
            soft-tissue window unless the DICOM body part suggests another). Everything that is not
            CT gets the 0.5–99.5 percentiles of its voxels (a strided sample of large volumes).
    """
    values = np.asarray(image.array)
    if values.size == 0:
        return (0.0, 1.0)
    preset = preset or default_window_preset(image)
    if preset in CT_WINDOW_PRESETS:
        return CT_WINDOW_PRESETS[preset]
    if preset != AUTO_WINDOW:
        raise ValueError(f"unknown window preset {preset!r}; known: {', '.join(window_presets(image))}")
    return percentile_window(values)


def percentile_window(values: Any) -> tuple[float, float]:
    """The 0.5–99.5 percentiles of the finite voxels (a strided sample of large volumes) as (low, high)."""
    values = np.asarray(values)
    step = max(1, int(values.size // _WINDOW_SAMPLE_VOXELS))
    sample = values.reshape(-1)[::step].astype(np.float64)
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return (0.0, 1.0)
    low, high = (float(v) for v in np.percentile(sample, _PERCENTILE_WINDOW))
    if high <= low:
        low, high = float(sample.min()), float(sample.max())
    return (low, high) if high > low else (low, low + 1.0)


def label_colormap(names: Mapping[int, str], colors: Mapping[int, tuple[int, int, int]] | None = None) -> Any:
    """napari ``DirectLabelColormap``: card colours (RGB 0..255), 0 transparent, others from tab20.

    Args:
        names: label value -> structure name (0, background, may be included).
        colors: label value -> (R, G, B) in 0..255, e.g. ``ModelCard.colors``.
    """
    import matplotlib
    from napari.utils.colormaps import DirectLabelColormap

    palette = matplotlib.colormaps["tab20"].colors
    color_dict: dict[int | None, tuple[float, ...]] = {None: _UNNAMED_LABEL_RGBA, 0: (0.0, 0.0, 0.0, 0.0)}
    for index, value in enumerate(sorted(v for v in names if int(v) != 0)):
        rgb = (colors or {}).get(value)
        if rgb is None:
            color_dict[int(value)] = (*palette[index % len(palette)][:3], 1.0)
        else:
            color_dict[int(value)] = (*(float(c) / 255.0 for c in rgb), 1.0)
    return DirectLabelColormap(color_dict=color_dict)


def label_features(names: Mapping[int, str]) -> Any:
    """Labels-layer ``features``: one row per label value (``index``) with its ``name``.

    napari shows the name of the structure under the cursor in its status bar from this table.
    """
    import pandas as pd

    values = sorted({0, *(int(v) for v in names)})
    rows = [names.get(v, "background" if v == 0 else f"label {v}") for v in values]
    return pd.DataFrame({"index": values, "name": rows})


def image_to_layer_data(
    image: Image,
    name: str | None = None,
    *,
    label_names: Mapping[int, str] | None = None,
    colors: Mapping[int, tuple[int, int, int]] | None = None,
    extra_metadata: Mapping[str, Any] | None = None,
) -> LayerDataTuple:
    """A napari layer data tuple ``(data, kwargs, "image"|"labels")`` showing ``image`` in physical space.

    Args:
        image: intensity images become ``image`` layers (CT/MR window), label images ``labels`` layers.
        name: layer name (default: the source file name, or "image"/"labels").
        label_names: label value -> name for the features table (default: ``label 1``, ``label 2``...).
        colors: label value -> (R, G, B) 0..255 for structures :mod:`medswin.io.anatomy` does not
            know (it colours the others); default: a qualitative palette.
        extra_metadata: more entries for ``metadata["medswin"]`` (e.g. the model card id).

    Returns:
        For a one-channel 3D image the array is ``(S, P, L)``-ordered, with ``scale``/``translate``
        (and ``rotate`` for oblique grids) mapping voxel indices to LPS millimetres in napari's
        ``(z, y, x)`` world order; see the module docstring.
    """
    display = reorient(image, DISPLAY_ORIENTATION[image.spatial_dims])
    if name is None:
        path = str(image.meta.get("path") or "")
        name = path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or image.kind
    source = _source_meta(image)
    source.update(copy.deepcopy(dict(extra_metadata or {})))
    kwargs: dict[str, Any] = {"name": name, **_geometry_kwargs(display), "metadata": {METADATA_KEY: source}}
    if image.kind == "label":
        if image.num_channels != 1:
            raise GeometryError(f"{name}: a label image has one channel, this one has {image.num_channels}")
        present = {int(v) for v in np.unique(display.array)} - {0}
        names = dict(label_names) if label_names is not None else {v: f"label {v}" for v in sorted(present)}
        source["label_names"] = {int(k): str(v) for k, v in names.items()}
        # conventional colours of known structures (medswin.io.anatomy, as the DICOM-SEG gets them),
        # the given ones for the rest
        colors = structure_colors({k: v for k, v in names.items() if int(k) != 0}, colors)
        if colors:
            source["colors"] = {int(k): tuple(int(c) for c in v) for k, v in colors.items()}
        kwargs["features"] = label_features(names)
        kwargs["colormap"] = label_colormap(names, colors)
        return display.array[0], kwargs, "labels"
    data = display.array[0] if display.num_channels == 1 else display.array
    source["window"] = default_window_preset(image)
    kwargs["contrast_limits"] = list(display_window(image, source["window"]))
    kwargs["colormap"] = "gray"
    return data, kwargs, "image"


def layer_attributes(layer: Any) -> dict[str, Any]:
    """The geometry and metadata of a napari layer, as the dict a writer receives."""
    return {
        "name": layer.name,
        "scale": np.asarray(layer.scale),
        "translate": np.asarray(layer.translate),
        "rotate": np.asarray(layer.rotate),
        "shear": np.asarray(layer.shear),
        "affine": np.asarray(layer.affine.affine_matrix),
        "metadata": layer.metadata,
        "features": getattr(layer, "features", None),
    }


def spatial_transform(layer: Any, dims: int) -> dict[str, Any]:
    """A layer's ``scale``/``translate``/``rotate``/``shear``/``affine`` restricted to its last ``dims`` axes.

    Given to a labels layer made on an image layer, it puts both through the very same transform
    (bit for bit, not a recomputation); a leading channel axis of a 4D image is dropped.
    """
    skip = layer.ndim - dims
    if skip < 0:
        raise GeometryError(f"layer {layer.name!r} has {layer.ndim} axes, fewer than {dims}")
    affine = np.asarray(layer.affine.affine_matrix)
    keep = [*range(skip, layer.ndim), layer.ndim]
    return {
        "axis_labels": list(layer.axis_labels)[skip:],
        "scale": np.asarray(layer.scale)[skip:],
        "translate": np.asarray(layer.translate)[skip:],
        "rotate": np.asarray(layer.rotate)[skip:, skip:],
        "shear": _shear_block(np.asarray(layer.shear), layer.ndim, skip),
        "affine": affine[np.ix_(keep, keep)],
    }


def _shear_block(shear: np.ndarray, ndim: int, skip: int) -> np.ndarray:
    """napari stores shear as the upper triangle (row by row); keep the part among the last axes."""
    if shear.ndim == 2:
        return shear[skip:, skip:]
    full = np.eye(ndim)
    full[np.triu_indices(ndim, 1)] = shear
    block = full[skip:, skip:]
    return block[np.triu_indices(ndim - skip, 1)]


def _data_to_world(attributes: Mapping[str, Any], ndim: int) -> np.ndarray:
    """Homogeneous voxel-index -> world matrix of a layer: ``affine @ [rotate·shear·scale | translate]``."""
    from napari.utils.transforms import Affine

    physical = Affine(
        scale=attributes.get("scale", (1.0,) * ndim),
        translate=attributes.get("translate", (0.0,) * ndim),
        rotate=attributes.get("rotate"),
        shear=attributes.get("shear"),
        ndim=ndim,
    )
    affine = attributes.get("affine")
    world = (
        np.eye(ndim + 1) if affine is None else np.asarray(getattr(affine, "affine_matrix", affine), float)
    )
    return world @ physical.affine_matrix


def layer_to_image(data: Any, attributes: Mapping[str, Any], kind: str | None = None) -> Image:
    """The :class:`Image` a layer shows: inverse of :func:`image_to_layer_data`.

    Args:
        data: the layer's array (numpy or array-like), as in ``layer.data``.
        attributes: the layer's ``scale``, ``translate``, ``rotate``, ``shear``, ``affine`` and
            ``metadata`` (what napari passes to writers; :func:`layer_attributes` for a layer).
        kind: ``"intensity"`` or ``"label"`` (default: what the metadata recorded, else intensity).

    Layers medswin made go back to the file's own axis order (exact, no interpolation); other
    layers are read as LPS millimetres in napari's ``(z, y, x)`` world order.
    """
    array = np.asarray(data)
    info = dict((attributes.get("metadata") or {}).get(METADATA_KEY) or {})
    dims = int(info.get("spatial_dims", min(array.ndim, 3)))
    if dims not in (2, 3) or array.ndim not in (dims, dims + 1):
        raise GeometryError(
            f"layer {attributes.get('name', '')!r}: data of shape {array.shape} is not a 2D/3D image "
            "(with an optional leading channel axis)"
        )
    matrix = _data_to_world(attributes, array.ndim)
    if array.ndim == dims + 1:  # leading channel axis: keep the spatial block
        if not np.allclose(matrix[0, 1:dims], 0.0) or not np.allclose(matrix[1:dims, 0], 0.0):
            raise GeometryError(
                f"layer {attributes.get('name', '')!r}: the channel axis is rotated into space"
            )
        matrix = matrix[1:, 1:]
    else:
        array = array[None]
    flip = np.eye(dims + 1)
    flip[:dims, :dims] = _world_reversal(dims)
    lps = flip @ matrix
    resolved_kind = kind or info.get("kind") or "intensity"
    meta = copy.deepcopy(dict(info.get("meta") or {}))
    try:
        image = Image.from_affine(array, lps_to_ras(dims) @ lps, resolved_kind, meta)  # type: ignore[arg-type]
    except GeometryError as error:
        raise GeometryError(f"layer {attributes.get('name', '')!r}: {error}") from error
    orientation = info.get("orientation")
    if orientation and orientation != image.orientation:
        image = reorient(image, orientation)
    return image


def image_from_layer(layer: Any, kind: str | None = None) -> Image:
    """:func:`layer_to_image` for a napari layer object (labels layers give label images)."""
    if kind is None and type(layer).__name__ == "Labels":
        kind = "label"
    return layer_to_image(layer.data, layer_attributes(layer), kind)
