"""Radiographs to Swin-X2S views: the same normalisation the DRRs of the training data had.

Swin-X2S was trained on DRRs (:mod:`medswin.transforms.drr`): each view min-max scaled to
[0, 1], zero-padded to a square, resized to ``cube_size`` pixels (160) and cropped to the
model's view, ``(X, Z)`` for the AP image and ``(Y, Z)`` for the lateral one (128 × 160). A real
radiograph (DICOM DX/CR, MHA, PNG) gets exactly that chain here, after it is turned so that its
axes match the DRRs':

* AP view: image x (columns) towards the patient's left, y (rows) towards the feet -- DICOM
  ``PatientOrientation`` ``L\\F``, the usual reading display of a PA/AP chest or pelvis film;
* lateral view: x towards posterior, y towards the feet -- ``P\\F`` (patient facing the viewer's left).

A DICOM file's ``PatientOrientation`` decides the flips and transposes; other files (DRRs written
by :mod:`medswin.transforms.drr` included) are taken to be displayed that way unless an orientation
is given. Those are the orientations of a card in frame ``"LPI"``; a card trained in another frame
(handedness, ``radiographs.frame``, e.g. ``"RAI"``) gets its views mirrored to match
(:func:`view_orientation`), and its output grid's axes follow that frame.

Physical size. The DRRs have the cube's voxel size as detector pixel, with the source
``source_to_isocentre_mm`` (1800) and the detector ``source_to_detector_mm`` (2000) from the centre
of the volume, so anatomy at the centre appears magnified by ``M = 2000 / 1800`` and the model learnt
``voxel = detector pixel``. A radiograph's pixel is converted to that scale: ``ImagerPixelSpacing``
with ``DistanceSourceToDetector``/``DistanceSourceToPatient`` is scaled by ``M_model / M_exposure``;
a calibrated ``PixelSpacing`` (at the patient) by ``M_model``; a detector spacing alone, or the
spacing of an MHA file, is taken as is (the exposure is assumed to match the model's geometry).
Padding and resizing then multiply it by ``padded side / cube_size``.

A film without a usable pixel size (a DICOM with no spacing or ``0\\0``, a PNG) or whose physical
size falls far outside :data:`PLAUSIBLE_FIELD_MM` (:data:`REFUSED_FIELD_MM`) is refused (:class:`UnusableRadiographError`): a wrong
scale changes every volume by its cube (a 0.14 mm CR read at 1 mm gives a 50-litre liver).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from medswin.errors import MedSwinError
from medswin.io.image import Image
from medswin.models.card import ModelCard
from medswin.transforms.drr import MODEL_DIRECTION, DrrGeometry, frame_direction

__all__ = [
    "VIEW_ORIENTATION",
    "OrientedRadiograph",
    "PreparedView",
    "drr_geometry",
    "orient_radiograph",
    "parse_orientation",
    "prepare_view",
    "radiograph_orientation",
    "prepare_views",
    "output_grid",
    "in_radiograph_frame",
    "view_orientation",
    "card_frame",
    "UnusableRadiographError",
    "PLAUSIBLE_FIELD_MM",
    "REFUSED_FIELD_MM",
]

log = logging.getLogger(__name__)

View = Literal["ap", "lateral"]


class UnusableRadiographError(MedSwinError):
    """A radiograph (or pair) that would give a nonsense volume: no usable pixel size, an implausible
    film size, or the same film given as both views. Refused rather than reconstructed."""


#: how a user gives the pixel size, in every front end's words.
PIXEL_SIZE_FIX = "give the detector pixel size in mm (medswin x2s predict --pixel-spacing MM, or the X-ray widget's pixel-size box)"
#: the DRRs' orientation as DICOM PatientOrientation: (direction of image x, direction of image y).
VIEW_ORIENTATION: dict[str, tuple[str, str]] = {"ap": ("L", "F"), "lateral": ("P", "F")}
_VIEW_LETTER = {"I": "F", "S": "H"}
#: the official scripts resize their DRRs (``cube/2 * int(2 * longest / middle)`` pixels) to the cube
#: without anti-aliasing; a view more than this many times the cube cannot be one of them.
OFFICIAL_MAX_SHRINK = 8


def view_orientation(view: View, frame: str = "LPI") -> tuple[str, str]:
    """DICOM-style orientation ``(image x, image y)`` of a model's view for its frame (handedness).

    The AP view's x follows the frame's X axis, the lateral view's x its Y axis, y its Z axis:
    ``"LPI"`` gives ``L\\F`` / ``P\\F`` (:data:`VIEW_ORIENTATION`), ``"RAI"`` gives ``R\\F`` / ``A\\F``.
    """
    code = str(frame).upper()
    frame_direction(code)
    return (code[0] if view == "ap" else code[1]), _VIEW_LETTER[code[2]]


def card_frame(card: ModelCard) -> str:
    """The handedness (model frame) a biplanar card was trained in (``"LPI"`` when it does not say)."""
    return str((card.radiographs or {}).get("frame", "LPI")).upper()


_AXIS_OF = {"L": "LR", "R": "LR", "A": "AP", "P": "AP", "H": "HF", "F": "HF"}
_DRR_KEYS = (
    "projection",
    "source_to_isocentre_mm",
    "source_to_detector_mm",
    "ap_source",
    "lateral_source",
    "intensity",
    "threshold_hu",
    "oversample",
    "values",
    "frame",
)
#: what a card without the key was made with: medswin's own DRRs (cards before the official emulation).
_CARD_DEFAULTS = {"values": "full_precision"}


def drr_geometry(card: ModelCard) -> DrrGeometry:
    """The DRR geometry a biplanar card was trained with (its ``radiographs`` section and ``roi_size``)."""
    if card.radiographs is None:
        raise MedSwinError(
            f"model {card.id!r} ({card.architecture}) is not a biplanar X-ray model (its card has no "
            "'radiographs' section); use medswin predict for volumes"
        )
    settings = {k: card.radiographs.get(k, _CARD_DEFAULTS.get(k)) for k in _DRR_KEYS}
    settings = {k: v for k, v in settings.items() if v is not None}
    roi = tuple(int(s) for s in card.roi_size)
    geometry = DrrGeometry(cube_size=int(card.radiographs["cube_size"]), volume_size=roi, **settings)  # type: ignore[arg-type]
    geometry.check()
    return geometry


def _magnification(geometry: DrrGeometry) -> float:
    if geometry.projection == "parallel":
        return 1.0
    return geometry.source_to_detector_mm / geometry.source_to_isocentre_mm


@dataclass
class PreparedView:
    """One view as the network takes it.

    Attributes:
        array: ``(rows, columns)`` float32 in [0, 1]: ``(X, Z)`` for AP, ``(Y, Z)`` for lateral.
        voxel_mm: the output voxel size this view implies (mm).
        notes: how the file was read (orientation, spacing source), for the report.
    """

    array: np.ndarray
    voxel_mm: float
    notes: list[str] = field(default_factory=list)


def parse_orientation(text: str, where: str = "orientation") -> tuple[str, str]:
    """``"L\\F"``, ``"L,F"`` or ``"LF"`` -> ``("L", "F")``; refuses letters that are not two body axes."""
    letters = [c for c in text.upper() if c.isalpha()]
    if (
        len(letters) != 2
        or any(c not in _AXIS_OF for c in letters)
        or _AXIS_OF[letters[0]] == _AXIS_OF[letters[1]]
    ):
        raise MedSwinError(
            f"{where}: {text!r} is not an image orientation; give two letters of different axes from "
            "L/R, A/P, H/F (direction of image x, then image y), e.g. L\\F"
        )
    return letters[0], letters[1]


def _dicom_orientation(image: Image) -> tuple[str, str] | None:
    value = (image.meta.get("dicom") or {}).get("PatientOrientation")
    if not value or isinstance(value, str) or len(value) != 2:
        return None
    first, second = (str(v).strip().upper()[:1] for v in value)  # the dominant letter of oblique values
    try:
        return parse_orientation(first + second)
    except MedSwinError:
        return None


def _orient(
    array: np.ndarray,
    spacing: tuple[float, float],
    found: tuple[str, str],
    view: View,
    where: str,
    frame: str = "LPI",
) -> tuple[np.ndarray, tuple[float, float]]:
    wanted = view_orientation(view, frame)
    axes = (_AXIS_OF[found[0]], _AXIS_OF[found[1]])
    target = (_AXIS_OF[wanted[0]], _AXIS_OF[wanted[1]])
    if axes == target[::-1]:
        array, spacing, found = array.T, (spacing[1], spacing[0]), (found[1], found[0])
    elif axes != target:
        other = "lateral" if view == "ap" else "AP"
        raise MedSwinError(
            f"{where}: image orientation {found[0]}\\{found[1]} does not fit an {view.upper() if view == 'ap' else view} "
            f"view (needs {wanted[0]}/{'R' if wanted[0] == 'L' else 'A'} and H/F axes); is this the {other} image?"
        )
    for axis in (0, 1):
        if found[axis] != wanted[axis]:
            array = np.flip(array, axis=axis)
    return np.ascontiguousarray(array), spacing


def _grey(image: Image, where: str) -> tuple[np.ndarray, tuple[float, float]]:
    from medswin.io.readers import require_finite

    array = np.asarray(require_finite(image, where).array, dtype=np.float64)
    spacing = tuple(float(s) for s in image.spacing)
    if image.spatial_dims == 3:  # a 2D image stored as a volume of one slice (NIfTI, MHA)
        flat = [a for a, n in enumerate(image.shape) if n == 1]
        if not flat:
            raise MedSwinError(f"{where}: a radiograph must be 2D, got a volume of shape {image.shape}")
        keep = [a for a in range(3) if a != flat[0]]
        array = np.squeeze(array, axis=1 + flat[0])
        spacing = tuple(spacing[a] for a in keep)
    elif image.spatial_dims != 2:
        raise MedSwinError(f"{where}: a radiograph must be 2D, got shape {image.shape}")
    if array.shape[0] in (3, 4):  # RGB(A) pictures of radiographs: grey = mean of the colours
        array = array[:3].mean(axis=0, keepdims=True)
    if array.shape[0] != 1:
        raise MedSwinError(f"{where}: a radiograph has one grey channel, got {array.shape[0]}")
    return array[0], (spacing[0], spacing[1])


@dataclass
class OrientedRadiograph:
    """A radiograph's grey pixels turned to a view's axes, before any scaling (what a viewer shows upright).

    Attributes:
        array: ``(x, y)`` float64 pixels: x towards the view's first letter (AP: the patient's left,
            lateral: posterior, in frame ``"LPI"``), y towards the feet.
        spacing: ``(x, y)`` pixel size in mm as the file states it (its own axes turned with it).
        orientation: the orientation the file was read with, ``(image x, image y)``, e.g. ``("F", "L")``.
        note: how that orientation was decided (given, from PatientOrientation, or assumed).
    """

    array: np.ndarray
    spacing: tuple[float, float]
    orientation: tuple[str, str]
    note: str


def radiograph_orientation(
    image: Image, view: View, orientation: str | tuple[str, str] | None = None
) -> tuple[tuple[str, str], str]:
    """The orientation ``(image x, image y)`` a radiograph is read with, and a note saying why.

    A given ``orientation`` wins; else the DICOM ``PatientOrientation``; else the standard display of
    the view (:data:`VIEW_ORIENTATION`: AP ``L\\F``, lateral ``P\\F``).
    """
    where = str(image.meta.get("path", f"<{view} image>"))
    if orientation is not None:
        found = parse_orientation(orientation, where) if isinstance(orientation, str) else orientation
        return found, f"orientation {found[0]}\\{found[1]} given"
    stated = _dicom_orientation(image)
    found = stated or VIEW_ORIENTATION[view]
    how = "from PatientOrientation" if stated else "assumed (standard display)"
    return found, f"orientation {found[0]}\\{found[1]} {how}"


def orient_radiograph(
    image: Image,
    view: View,
    *,
    orientation: str | tuple[str, str] | None = None,
    frame: str = "LPI",
) -> OrientedRadiograph:
    """A 2D radiograph's pixels turned (transposed and flipped, no interpolation) to a view's axes.

    Args:
        image: a 2D grey image (DICOM DX/CR, MHA, PNG ...; RGB pictures become grey).
        view: ``"ap"`` or ``"lateral"``.
        orientation: the image's orientation (``"L\\F"``), overriding the file's; see
            :func:`radiograph_orientation`.
        frame: the model frame whose view axes to turn to (:func:`view_orientation`).

    Raises:
        MedSwinError: naming the file, for a non-2D image, NaN pixels or an orientation that does not
            fit the view.
    """
    where = str(image.meta.get("path", f"<{view} image>"))
    array, spacing = _grey(image, where)
    found, note = radiograph_orientation(image, view, orientation)
    array, spacing = _orient(array, spacing, found, view, where, frame)
    return OrientedRadiograph(array, spacing, found, note)


#: longest side of a body radiograph in mm (a hand film to a long-leg film); outside it the pixel
#: size is probably wrong (a 16x16 image; a 1760-pixel CR read at an assumed 1 mm): said in the notes.
PLAUSIBLE_FIELD_MM = (100.0, 1500.0)
#: far outside (half the smallest, twice the largest), the size is certainly wrong: refused. The band
#: between keeps small DRR training crops (a 64 x 96 DRR of a 100 mm CT) usable.
REFUSED_FIELD_MM = (PLAUSIBLE_FIELD_MM[0] / 2, PLAUSIBLE_FIELD_MM[1] * 2)


def _calibration(values: Any) -> list[float] | None:
    """A spacing attribute's values; ``None`` when absent or ``0\\0`` (uncalibrated, e.g. CR films)."""
    numbers = [float(v) for v in values] if values else []
    return numbers if any(numbers) else None


def _listed(values: Any) -> str:
    """A DICOM multi-value as the header shows it (``0\\0``)."""
    items = values if isinstance(values, (list, tuple)) else [values]
    return "\\".join(f"{float(v):g}" for v in items)


def _pixel_mm(
    image: Image, spacing: tuple[float, float], geometry: DrrGeometry, given: float | None, where: str
) -> tuple[tuple[float, float], str]:
    """Pixel size on the model's scale (see module docstring) and where it came from."""
    if given is not None:
        if not given > 0:
            raise MedSwinError(f"{where}: pixel spacing must be positive, got {given}")
        return (given, given), f"pixel spacing {given:g} mm given"
    if image.meta.get("pixel_spacing_assumed"):
        raise UnusableRadiographError(
            f"{where}: a {image.meta.get('format', 'raster').upper()} file carries no pixel size; {PIXEL_SIZE_FIX}"
        )
    dicom = image.meta.get("dicom") or {}
    model = _magnification(geometry)
    imager, calibrated = (_calibration(dicom.get(k)) for k in ("ImagerPixelSpacing", "PixelSpacing"))
    if dicom and not imager and not calibrated:
        stated = [f"{k} {_listed(dicom[k])}" for k in ("PixelSpacing", "ImagerPixelSpacing") if dicom.get(k)]
        raise UnusableRadiographError(
            f"{where}: the film carries no usable pixel size "
            f"({', '.join(stated) or 'no PixelSpacing or ImagerPixelSpacing'}); {PIXEL_SIZE_FIX}"
        )
    sid, sod = dicom.get("DistanceSourceToDetector"), dicom.get("DistanceSourceToPatient")
    if calibrated and imager and calibrated != imager:
        return (spacing[0] * model, spacing[1] * model), "calibrated PixelSpacing (at the patient)"
    if imager and sid and sod and float(sod) > 0 and float(sid) > float(sod):
        factor = model / (float(sid) / float(sod))
        return (
            (spacing[0] * factor, spacing[1] * factor),
            f"ImagerPixelSpacing at magnification {float(sid) / float(sod):.3f} (model {model:.3f})",
        )
    source = "detector pixel spacing" if dicom else "file pixel spacing"
    return spacing, f"{source}, exposure assumed at the model's magnification {model:.3f}"


def _resize(array: np.ndarray, size: tuple[int, int], mode: str, antialias: bool = True) -> np.ndarray:
    """Resample to ``size``; ``antialias=False`` is the official scripts' MONAI ``Resize`` exactly
    (torch interpolate, ``align_corners=False``, no anti-aliasing, no clamp)."""
    import torch
    import torch.nn.functional as F

    if tuple(array.shape) == tuple(size):
        return array
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None, None]
    if not antialias:
        return F.interpolate(tensor, size=size, mode=mode, align_corners=False)[0, 0].numpy()
    shrinking = size[0] < array.shape[0] or size[1] < array.shape[1]
    out = F.interpolate(tensor, size=size, mode=mode, align_corners=False, antialias=shrinking)
    return out[0, 0].clamp_(0.0, 1.0).numpy()


def prepare_view(
    image: Image,
    view: View,
    card: ModelCard,
    *,
    orientation: str | tuple[str, str] | None = None,
    pixel_spacing: float | None = None,
) -> PreparedView:
    """One radiograph (or DRR file) as the network's view input; see the module docstring.

    Args:
        image: a 2D grey image (DICOM DX/CR, MHA, PNG ...).
        view: ``"ap"`` or ``"lateral"``.
        card: the biplanar model's card (view size, ``cube_size``, resize mode, geometry).
        orientation: the image's orientation (``"L\\F"``) when it is not the DRRs' and the file does not say.
        pixel_spacing: detector pixel size in mm (needed for PNG/JPEG/TIFF; overrides the file's).

    Raises:
        MedSwinError: naming the file, for a non-2D image, NaN pixels or an orientation that does
            not fit the view; :class:`UnusableRadiographError` for a missing or zero pixel size or a
            film far outside the size of body radiographs (:data:`REFUSED_FIELD_MM`).
    """
    where = str(image.meta.get("path", f"<{view} image>"))
    geometry = drr_geometry(card)
    film = orient_radiograph(image, view, orientation=orientation, frame=card_frame(card))
    array, spacing, notes = film.array, film.spacing, [film.note]
    (sx, sy), source = _pixel_mm(image, spacing, geometry, pixel_spacing, where)
    notes.append(source)
    field_mm = max(array.shape[0] * sx, array.shape[1] * sy)
    if not REFUSED_FIELD_MM[0] <= field_mm <= REFUSED_FIELD_MM[1]:
        fix = "check the pixel size given" if pixel_spacing is not None else PIXEL_SIZE_FIX
        raise UnusableRadiographError(
            f"{where}: a {array.shape[0]}x{array.shape[1]} film of {sx:g} mm pixels ({source}) spans "
            f"{field_mm:.0f} mm, far outside the {PLAUSIBLE_FIELD_MM[0]:.0f}-{PLAUSIBLE_FIELD_MM[1]:.0f} mm of "
            f"body radiographs; {fix}"
        )
    if not PLAUSIBLE_FIELD_MM[0] <= field_mm <= PLAUSIBLE_FIELD_MM[1]:
        warning = (
            f"a {array.shape[0]}x{array.shape[1]} film of these pixels spans {field_mm:.0f} mm, outside the "
            f"{PLAUSIBLE_FIELD_MM[0]:.0f}-{PLAUSIBLE_FIELD_MM[1]:.0f} mm of body radiographs: check the pixel "
            "size (--pixel-spacing MM)"
        )
        log.warning("%s: %s", where, warning)
        notes.append(warning)
    low, high = float(array.min()), float(array.max())
    if high <= low:
        raise MedSwinError(f"{where}: the radiograph is blank (every pixel {low:g})")
    array = ((array - low) / (high - low)).astype(np.float32)  # min-max of the film itself, as the DRRs
    if abs(sx - sy) > 1e-3 * max(sx, sy):  # non-square pixels: resample to the finer one
        pixel = min(sx, sy)
        size = (max(1, round(array.shape[0] * sx / pixel)), max(1, round(array.shape[1] * sy / pixel)))
        array, sx = _resize(array, size, "bilinear"), pixel
        notes.append(f"non-square pixels resampled to {pixel:.4g} mm")
    side = max(array.shape)
    padded = np.zeros((side, side), dtype=np.float32)
    r0, c0 = (side - array.shape[0]) // 2, (side - array.shape[1]) // 2
    padded[r0 : r0 + array.shape[0], c0 : c0 + array.shape[1]] = array
    cube = geometry.cube_size
    settings = card.radiographs or {}
    antialias = bool(settings.get("antialias", True))
    if not antialias and side > OFFICIAL_MAX_SHRINK * cube:
        # far larger than any official DRR (cube x cube/2 * int(2 * longest / middle) pixels): a film,
        # whose fine detail and noise the official DRRs never had; anti-aliasing makes it look like one
        antialias = True
        notes.append(f"anti-aliased: {side} pixels is more than {OFFICIAL_MAX_SHRINK}x the model's {cube}")
    square = _resize(padded, (cube, cube), settings.get("resize", "bicubic"), antialias)
    rows = geometry.volume_size[0 if view == "ap" else 1]
    cols = geometry.volume_size[2]
    top, left = (cube - rows) // 2, (cube - cols) // 2
    cropped = np.ascontiguousarray(square[top : top + rows, left : left + cols], dtype=np.float32)
    return PreparedView(cropped, sx * side / cube, notes)


def prepare_views(
    ap: Image,
    lateral: Image,
    card: ModelCard,
    *,
    orientations: tuple[str | None, str | None] = (None, None),
    pixel_spacing: tuple[float | None, float | None] = (None, None),
) -> tuple[PreparedView, PreparedView, tuple[float, float, float]]:
    """Both views plus the output voxel size ``(X, Y, Z)``: X from the AP view, Y from the lateral, Z their mean.

    A warning is logged when the two views imply sizes more than 5 % apart (the model was
    trained on views of one cube, so it will reconstruct one of them at the wrong scale).
    """
    front = prepare_view(ap, "ap", card, orientation=orientations[0], pixel_spacing=pixel_spacing[0])
    side = prepare_view(lateral, "lateral", card, orientation=orientations[1], pixel_spacing=pixel_spacing[1])
    if abs(front.voxel_mm - side.voxel_mm) > 0.05 * max(front.voxel_mm, side.voxel_mm):
        log.warning(
            "the AP and lateral views imply voxel sizes %.3f and %.3f mm; the model expects one scale for both",
            front.voxel_mm,
            side.voxel_mm,
        )
    return front, side, (front.voxel_mm, side.voxel_mm, (front.voxel_mm + side.voxel_mm) / 2)


def _centred_origin(
    shape: tuple[int, ...], spacing: tuple[float, ...], direction: np.ndarray = MODEL_DIRECTION
) -> tuple[float, ...]:
    size = np.asarray(shape, dtype=np.float64)
    return tuple(float(o) for o in -direction @ ((size - 1.0) / 2.0 * np.asarray(spacing)))


def in_radiograph_frame(labels: Image) -> Image:
    """``labels`` (on a model grid, e.g. a DRR case's) moved so that its centre is the isocentre (0, 0, 0).

    Predictions from radiographs live in this frame (radiographs carry no patient coordinates), so
    references written in it compare with them voxel for voxel; the change is a pure translation.
    """
    direction = np.asarray(labels.direction)
    axis_aligned = np.allclose(np.abs(direction), np.abs(MODEL_DIRECTION))
    if not axis_aligned or labels.orientation[0] not in "LR" or labels.orientation[1] not in "PA":
        raise MedSwinError(
            f"{labels.meta.get('path', '<labels>')}: not on a Swin-X2S model grid (axes X: L/R, Y: P/A, Z: I/S)"
        )
    moved = labels.with_array(labels.array)
    moved.origin = _centred_origin(labels.shape, labels.spacing, direction)
    return moved


def output_grid(
    card: ModelCard, spacing: tuple[float, float, float], meta: dict[str, Any] | None = None
) -> Image:
    """An empty label image of the model's output grid: ``roi_size`` voxels, axes as the card's frame
    (LPI unless it says otherwise), centred on (0, 0, 0).

    Radiographs carry no patient coordinate system, so the volume is placed about the isocentre.
    """
    return Image(
        np.zeros((1, *card.roi_size), dtype=np.uint8),
        tuple(float(s) for s in spacing),
        _centred_origin(tuple(card.roi_size), spacing, frame_direction(card_frame(card))),
        frame_direction(card_frame(card)),
        "label",
        dict(meta or {}),
    )
