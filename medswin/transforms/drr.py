"""Digitally reconstructed radiographs (DRRs): the AP and lateral inputs of Swin-X2S made from a CT.

Python replacement for the ITK programs of the Swin-X2S preprocessing (no external executable),
in two modes (:attr:`DrrGeometry.values`):

``"official"`` (default; every preset card): the official ``DigitallyReconstructedRadiograph``
program as its dataset scripts run it, emulated step by step (see the block comment above
:func:`official_volume`): the CT taken on its own grid in the model frame's handedness, rays sampled
plane by plane as ITK's ray caster samples them, its rotation centre, detector size and lateral
rotation, 16-bit clamp, 8-bit rescale. The views are that DRR (``/255``), ``(columns, rows)`` of
``cube_size × cube_size·0.5·int(2·longest/middle)``; :func:`medswin.transforms.radiograph.prepare_view`
pads, resizes and crops them as the official scripts do. The labels follow the program's
nearest-neighbour chain onto the 128 × 128 × 160 grid. ``tests/x2s/test_drr_official.py`` checks
all of it against the program rebuilt from ITK's own classes.

``"full_precision"`` (medswin's own; the shipped demo model's):

1. The CT is resampled (in physical space, so oblique scans are handled) onto a cube centred on
   the CT's field of view whose side is the CT's longest physical extent; ``cube_size`` voxels
   (160) per side, so the voxel size is ``longest extent / 160`` (about 2.6 mm for whole-body CT).
2. Its axes follow the model frame (default ``"LPI"``): X from the patient's right to left, Y from
   anterior to posterior, Z from head to feet.
3. HU become attenuation and rays are cast plane by plane through the cube, with bilinear
   interpolation in each plane (the method of ITK's ``RayCastInterpolateImageFunction``) for a
   cone beam (source 1800 mm from the cube centre, detector 2000 mm from the source) or parallel rays.
4. Each view is min-max normalised to [0, 1] by its true range and cropped to ``volume_size``: the
   AP image is ``(X, Z)`` (rows: patient right -> left, columns: head -> feet), the lateral image
   ``(Y, Z)`` (rows: anterior -> posterior). Detector pixels have the cube's voxel size at the
   detector plane.
5. The label map, if given, is resampled (nearest neighbour) onto the model's output grid: the
   central ``volume_size`` voxels (128 × 128 × 160) of the cube.

In both modes, with frame LPI and displayed as ``image.T`` (rows head -> feet), the AP DRR looks
like a radiograph in the usual reading orientation (patient's right on the viewer's left) and the
lateral DRR like a lateral radiograph with the patient facing the viewer's left. The frame is the
handedness a model learnt: the official program keeps each file's stored axis senses, so a dataset
stored RAS-style trained its weights in frame ``"RAI"``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from medswin.errors import GeometryError, MedSwinError
from medswin.io.geometry import resample_to_grid
from medswin.io.image import Image

__all__ = [
    "MODEL_FRAME",
    "MODEL_DIRECTION",
    "DRR_VALUES",
    "frame_direction",
    "DrrGeometry",
    "BiplanarDRR",
    "cube_grid",
    "hu_to_attenuation",
    "line_integrals",
    "biplanar_drr",
]

log = logging.getLogger(__name__)

#: orientation code of the Swin-X2S volume axes (X: to the patient's left, Y: posterior, Z: inferior).
MODEL_FRAME = "LPI"
#: the same as an LPS direction matrix (columns = axis directions).
MODEL_DIRECTION = np.diag([1.0, 1.0, -1.0])
#: linear attenuation coefficient of water (1/mm) at about 70 keV, for ``intensity="attenuation"``.
MU_WATER_PER_MM = 0.0195

#: how a DRR's values are made: ``"official"`` emulates the official ITK program (native-grid ray
#: cast, its rotation centre and detector size, sums clamped to 16-bit, 8-bit rescale);
#: ``"full_precision"`` is medswin's own cube projection scaled by its true range.
DRR_VALUES = ("official", "full_precision")

View = Literal["ap", "lateral"]
_LETTER_LPS = {"L": (0, 1.0), "R": (0, -1.0), "P": (1, 1.0), "A": (1, -1.0), "S": (2, 1.0), "I": (2, -1.0)}
_OPPOSITE = {"L": "R", "R": "L", "A": "P", "P": "A", "S": "I", "I": "S"}


def frame_direction(frame: str) -> np.ndarray:
    """LPS direction matrix (columns = axis directions) of a model frame code such as ``"LPI"`` or ``"RAI"``.

    The frame is the handedness a model learnt: X must be L or R, Y P or A, Z I or S.
    """
    code = str(frame).upper()
    if len(code) != 3 or code[0] not in "LR" or code[1] not in "PA" or code[2] not in "IS":
        raise MedSwinError(
            f"DRR frame {frame!r}: give three letters, X from L/R, Y from P/A, Z from I/S (e.g. 'LPI')"
        )
    direction = np.zeros((3, 3))
    for column, letter in enumerate(code):
        axis, sign = _LETTER_LPS[letter]
        direction[axis, column] = sign
    return direction


_VIEW_AXIS = {"ap": 1, "lateral": 0}  # the volume axis each view projects along


@dataclass(frozen=True)
class DrrGeometry:
    """How the DRRs and the label volume are made (defaults: the official Swin-X2S preprocessing).

    Attributes:
        cube_size: voxels per side of the isotropic cube spanning the CT's longest extent (160).
        volume_size: the model's output grid ``(X, Y, Z)`` cut from the cube's centre (128, 128, 160);
            the AP view is ``(X, Z)``, the lateral view ``(Y, Z)``.
        projection: ``"cone"`` (point source) or ``"parallel"``.
        source_to_isocentre_mm: source to cube centre distance (cone beam; official 1800).
        source_to_detector_mm: source to detector plane distance (cone beam; official 2000).
        ap_source: side of the source for the AP view, ``"posterior"`` (official: a PA exposure)
            or ``"anterior"``.
        lateral_source: side of the source for the lateral view, ``"right"`` (what the official
            program does: its ``-ry 90`` goes through Euler angles at gimbal lock and comes out as
            ``-90``, see :func:`official_rotation`) or ``"left"`` (the shipped demo's DRRs).
        intensity: ``"hu_above_threshold"``: integrate ``max(HU - threshold_hu, 0)`` (what the
            official ITK ray caster does, threshold 0); ``"attenuation"``: integrate
            ``mu_water * max(1 + HU / 1000, 0)`` (1/mm), a physical line integral.
        threshold_hu: threshold for ``"hu_above_threshold"``.
        oversample: rays and planes per cube voxel along each axis (anti-aliasing; 1 = none).
        detector_pixel_mm: detector pixel size; ``None`` = the cube voxel size (official).
        values: ``"official"`` (default): the official program emulated -- rays cast on the CT's own
            grid about its rotation centre (voxel index n/2, half a voxel past the middle), a
            ``cube_size`` x ``cube_size * 0.5 * int(2 * longest / middle extent)`` detector, sums
            truncated to 16-bit signed (clamped at 32767) and rescaled to 8 bits; the view file is
            that DRR (``/255``), which :func:`medswin.transforms.radiograph.prepare_view` pads, resizes
            and crops as the official scripts do. ``"full_precision"``: medswin's cube projection,
            centred on the field of view, min-max scaled by its true range, already cropped.
        frame: handedness of the model frame (axis X, Y, Z directions, e.g. ``"LPI"``, ``"RAI"``):
            the official program discards a CT's direction signs, so its frame is how the files of
            the training dataset were stored (``"LPI"`` for LPS-stored files, ``"RAI"`` for RAS).
    """

    cube_size: int = 160
    volume_size: tuple[int, int, int] = (128, 128, 160)
    projection: Literal["cone", "parallel"] = "cone"
    source_to_isocentre_mm: float = 1800.0
    source_to_detector_mm: float = 2000.0
    ap_source: Literal["posterior", "anterior"] = "posterior"
    lateral_source: Literal["left", "right"] = "right"
    intensity: Literal["hu_above_threshold", "attenuation"] = "hu_above_threshold"
    threshold_hu: float = 0.0
    oversample: int = 2
    detector_pixel_mm: float | None = None
    values: Literal["official", "full_precision"] = "official"
    frame: str = MODEL_FRAME

    @property
    def direction(self) -> np.ndarray:
        """LPS direction matrix of the model frame (see :func:`frame_direction`)."""
        return frame_direction(self.frame)

    def check(self) -> None:
        """Raise :class:`MedSwinError` naming the first impossible setting."""
        x, y, z = self.volume_size
        if self.cube_size < 2 or min(self.volume_size) < 1 or max(self.volume_size) > self.cube_size:
            raise MedSwinError(
                f"DRR geometry: volume_size {self.volume_size} must fit in a cube of {self.cube_size}"
            )
        if x != y:
            raise MedSwinError(
                f"DRR geometry: volume_size {self.volume_size} needs X == Y (both views share a size)"
            )
        if self.projection not in ("cone", "parallel"):
            raise MedSwinError(
                f"DRR geometry: projection must be 'cone' or 'parallel', got {self.projection!r}"
            )
        if self.intensity not in ("hu_above_threshold", "attenuation"):
            raise MedSwinError(f"DRR geometry: unknown intensity {self.intensity!r}")
        if self.projection == "cone" and not 0 < self.source_to_isocentre_mm < self.source_to_detector_mm:
            raise MedSwinError(
                "DRR geometry: need 0 < source_to_isocentre_mm < source_to_detector_mm, got "
                f"{self.source_to_isocentre_mm} and {self.source_to_detector_mm}"
            )
        if self.ap_source not in ("posterior", "anterior") or self.lateral_source not in ("left", "right"):
            raise MedSwinError(
                f"DRR geometry: ap_source must be posterior/anterior and lateral_source left/right, got "
                f"{self.ap_source!r}, {self.lateral_source!r}"
            )
        if self.values not in DRR_VALUES:
            raise MedSwinError(f"DRR geometry: values must be one of {DRR_VALUES}, got {self.values!r}")
        frame_direction(self.frame)
        if self.values == "official" and (
            self.projection != "cone"
            or self.intensity != "hu_above_threshold"
            or self.detector_pixel_mm is not None
        ):
            raise MedSwinError(
                "DRR geometry: values 'official' emulate the official program (cone beam, HU above threshold, "
                "its own detector); use values 'full_precision' for other projections, intensities or pixel sizes"
            )
        if self.oversample < 1:
            raise MedSwinError(f"DRR geometry: oversample must be >= 1, got {self.oversample}")
        if self.detector_pixel_mm is not None and not self.detector_pixel_mm > 0:
            raise MedSwinError(
                f"DRR geometry: detector_pixel_mm must be positive, got {self.detector_pixel_mm}"
            )

    def source_side(self, view: View) -> float:
        """+1 if the view's source lies on the positive side of its projection axis (frame Y / X)."""
        if view == "ap":
            letter, axis = ("P" if self.ap_source == "posterior" else "A"), 1
        else:
            letter, axis = ("L" if self.lateral_source == "left" else "R"), 0
        return 1.0 if self.frame.upper()[axis] == letter else -1.0


@dataclass
class BiplanarDRR:
    """The two views and the label volume on the model's output grid.

    Attributes:
        ap: AP (coronal) DRR, 2D Image ``(1, X, Z)``, float32 in [0, 1].
        lateral: lateral (sagittal) DRR, 2D Image ``(1, Y, Z)``, float32 in [0, 1].
        labels: label map on the model grid ``(1, X, Y, Z)`` (``None`` if no labels were given);
            its geometry places a prediction back in patient space.
        grid: an empty (zeros) Image of the model grid, for predictions when there are no labels.
    """

    ap: Image
    lateral: Image
    labels: Image | None
    grid: Image

    def model_inputs(self) -> tuple[np.ndarray, np.ndarray]:
        """``(ap, lateral)`` as ``(1, 1, X, Z)`` / ``(1, 1, Y, Z)`` float32 arrays for ``SwinX2SNet``.

        Only for ``values="full_precision"`` views, which are already the network's; official DRRs are
        the program's whole image and go through :func:`medswin.transforms.radiograph.prepare_view`.
        """
        if self.ap.meta.get("drr", {}).get("values") == "official":
            raise MedSwinError(
                "official DRRs are the program's whole image; prepare them for a model with "
                "medswin.transforms.radiograph.prepare_view (or X2SPredictor.predict)"
            )
        return self.ap.array[None].astype(np.float32), self.lateral.array[None].astype(np.float32)


def cube_grid(ct: Image, size: int) -> tuple[np.ndarray, float]:
    """Centre (LPS mm) and voxel size (mm) of the cube spanning ``ct``'s longest physical extent.

    The extent along an axis is ``voxels × spacing`` (the official program's rule); the centre is
    the middle of the field of view.
    """
    shape = np.asarray(ct.shape, dtype=np.float64)
    extent = shape * np.asarray(ct.spacing)
    centre_index = (shape - 1.0) / 2.0
    centre = ct.lps_affine @ np.append(centre_index, 1.0)
    return centre[:3], float(extent.max()) / size


def _grid_origin(
    centre: np.ndarray, size: tuple[int, ...], spacing: float, direction: np.ndarray = MODEL_DIRECTION
) -> np.ndarray:
    return centre - direction @ ((np.asarray(size, dtype=np.float64) - 1.0) / 2.0 * spacing)


def hu_to_attenuation(
    hu: np.ndarray, intensity: str = "hu_above_threshold", threshold_hu: float = 0.0
) -> np.ndarray:
    """Per-voxel quantity the rays integrate (float32), from Hounsfield units.

    ``"hu_above_threshold"``: ``max(HU - threshold_hu, 0)``; ``"attenuation"``:
    ``MU_WATER_PER_MM * max(1 + HU/1000, 0)`` in 1/mm (air 0, water 0.0195, cortical bone ~0.04).
    """
    hu = np.asarray(hu, dtype=np.float32)
    if intensity == "hu_above_threshold":
        return np.maximum(hu - np.float32(threshold_hu), 0.0)
    if intensity == "attenuation":
        return np.float32(MU_WATER_PER_MM) * np.maximum(1.0 + hu / 1000.0, 0.0)
    raise MedSwinError(f"unknown DRR intensity {intensity!r}; use 'hu_above_threshold' or 'attenuation'")


def line_integrals(
    volume: np.ndarray,
    voxel_mm: float,
    view: View,
    detector_shape: tuple[int, int],
    detector_pixel_mm: float,
    geometry: DrrGeometry = DrrGeometry(),
    chunk: int = 16,
) -> np.ndarray:
    """Integrate ``volume`` along the rays of one view (Joseph's method: one sample per voxel plane).

    Args:
        volume: ``(X, Y, Z)`` values per voxel in the model frame, e.g. from :func:`hu_to_attenuation`;
            an isotropic grid centred on the isocentre.
        voxel_mm: its voxel size (mm).
        view: ``"ap"`` (rays along Y; detector ``(X, Z)``) or ``"lateral"`` (rays along X; detector ``(Y, Z)``).
        detector_shape: detector pixels ``(rows, columns)``, centred on the isocentre's projection.
        detector_pixel_mm: pixel size on the detector plane (mm).
        geometry: projection and source position (``oversample`` is not applied here).
        chunk: voxel planes sampled at once (memory bound).

    Returns:
        ``detector_shape`` float32 array: integral of ``volume`` along each ray in value·mm.
        Outside the volume the integrand is 0.
    """
    import torch
    import torch.nn.functional as F

    axis = _VIEW_AXIS[view]
    vol = torch.from_numpy(np.ascontiguousarray(np.moveaxis(np.asarray(volume, dtype=np.float32), axis, 0)))
    planes, n_u, n_v = vol.shape  # plane index along the ray axis; (u, v) = detector (rows, columns)
    rows, cols = detector_shape
    u = (torch.arange(rows, dtype=torch.float64) - (rows - 1) / 2) * detector_pixel_mm
    v = (torch.arange(cols, dtype=torch.float64) - (cols - 1) / 2) * detector_pixel_mm
    uu, vv = torch.meshgrid(u, v, indexing="ij")
    plane_pos = (torch.arange(planes, dtype=torch.float64) - (planes - 1) / 2) * voxel_mm
    if geometry.projection == "parallel":
        scale = torch.ones(planes, dtype=torch.float64)
        path = torch.full_like(uu, voxel_mm)
    else:
        side = geometry.source_side(view)
        source = side * geometry.source_to_isocentre_mm  # source position on the ray axis
        sdd = geometry.source_to_detector_mm
        # a ray from the source to detector point (u, v) crosses plane a at (u, v) * |a - source| / sdd
        scale = (plane_pos - source).abs() / sdd
        path = voxel_mm * torch.sqrt(uu**2 + vv**2 + sdd**2) / sdd
    # voxel position (mm) -> grid_sample coordinate in [-1, 1] (align_corners=True: centres of end voxels)
    half_u, half_v = (n_u - 1) / 2 * voxel_mm, (n_v - 1) / 2 * voxel_mm
    total = torch.zeros(rows, cols, dtype=torch.float64)
    for start in range(0, planes, chunk):
        stop = min(planes, start + chunk)
        s = scale[start:stop].view(-1, 1, 1)
        grid = torch.stack(
            (
                (vv[None] * s / half_v if n_v > 1 else torch.zeros_like(vv[None] * s)),
                (uu[None] * s / half_u if n_u > 1 else torch.zeros_like(uu[None] * s)),
            ),
            dim=-1,
        ).to(torch.float32)
        samples = F.grid_sample(
            vol[start:stop, None], grid, mode="bilinear", padding_mode="zeros", align_corners=True
        )
        total += samples[:, 0].sum(dim=0, dtype=torch.float64)
    return (total * path).to(torch.float32).numpy()


# ------------------------------------------------------------------------------------------------
# The official program, emulated (values="official")
#
# Facts about liukuan5625/Swin-X2S dataset/DRR/DigitallyReconstructedRadiograph.cpp (ITK), used as
# run by its dataset scripts (``-size 160 160 -rx -90 -ry 0|90``), after IdentityDirection has set
# the CT's direction to identity (keeping each axis's stored sense):
# * the rotation centre is voxel index n/2 on every axis (half a voxel past the middle);
# * the source is 1800 mm from it, the detector plane 200 mm beyond it on the other side;
# * the detector has ``size`` columns and ``size * 0.5 * int(2 * longest / middle extent)`` rows of
#   ``longest extent / rows`` mm (extents as float32, ``voxels x spacing``);
# * ITK's RayCastInterpolateImageFunction samples one point per voxel plane along the ray's dominant
#   axis, bilinear within the plane, keeps what exceeds the threshold (0) and scales by the step;
# * the sums land in a 16-bit signed image (truncated, clamped to [-32768, 32767]) and are then
#   rescaled min..max -> 0..255 (truncated to 8 bits); the dataset scripts divide by 255.
# Known limit: whether a ray's first voxel plane on the volume's boundary is sampled depends on the
# last bit of ITK's entry-point arithmetic (it varies from ray to ray) and is not reproduced bit for
# bit here. Where the outermost voxels are not air (a table at the field-of-view edge) a sum can
# differ by that one voxel's value x step (about 200 HU·mm); elsewhere the sums agree to the unit.


def official_volume(ct: Image, frame: str) -> Image:
    """``ct`` with its array axes flipped/permuted (no interpolation) as the official program sees a
    file stored in ``frame``'s handedness: X and Y as the frame, the third axis opposite to Z."""
    from medswin.io.geometry import reorient

    code = str(frame).upper()
    frame_direction(code)
    return reorient(ct, code[0] + code[1] + _OPPOSITE[code[2]])


def official_detector(
    shape: tuple[int, ...], spacing: tuple[float, ...], size: int
) -> tuple[int, int, float]:
    """``(columns, rows, pixel mm)`` of the official DRR of a CT with ``shape`` voxels of ``spacing`` mm."""
    extents = sorted(np.float32(float(s) * float(np.float32(n))) for n, s in zip(shape, spacing, strict=True))
    ratio = int(float(np.float32(extents[2] / extents[1])) / 0.5)
    rows = int(size * 0.5 * ratio)
    return size, rows, float(np.float32(extents[2] / np.float32(rows)))


def _rotation_xyz(ax: float, ay: float, az: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rx = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(ax), -np.sin(ax)], [0.0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0.0, np.sin(ay)], [0.0, 1.0, 0.0], [-np.sin(ay), 0.0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0.0], [np.sin(az), np.cos(az), 0.0], [0.0, 0.0, 1.0]])
    return rx, ry, rz


def official_rotation(view: View) -> np.ndarray:
    """The rotation the program really applies for ``-rx -90 -ry 0|90``.

    It builds ``Rx(-90°) · Ry(ry)`` and hands it to an Euler transform, which stores Euler angles
    (Z·X·Y order) and rebuilds its matrix from them. At X = -90° the angles are degenerate (gimbal
    lock: Z is set to 0, Y = atan2(m10, m00)), so for the lateral view the rebuilt rotation is
    ``Rx(-90°) · Ry(-90°)``: the source sits at the -i side, not +i.
    """
    to_radians = np.arctan(1.0) * 4.0 / 180.0
    rx, ry, _ = _rotation_xyz(-90.0 * to_radians, (0.0 if view == "ap" else 90.0) * to_radians, 0.0)
    built = rx @ ry
    angle_x = float(np.arcsin(np.clip(built[2, 1], -1.0, 1.0)))
    cos_x = np.cos(angle_x)
    if abs(cos_x) > 0.00005:
        angle_y = float(np.arctan2(-built[2, 0] / cos_x, built[2, 2] / cos_x))
        angle_z = float(np.arctan2(-built[0, 1] / cos_x, built[1, 1] / cos_x))
    else:
        angle_z, angle_y = 0.0, float(np.arctan2(built[1, 0], built[0, 0]))
    rx, ry, rz = _rotation_xyz(angle_x, angle_y, angle_z)
    return rz @ rx @ ry


def _box_intercepts(point: np.ndarray, ray: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, ...]:
    """Entry/exit of each ray on the volume box ``[0, box]`` in the ray caster's face order.

    Returns ``(start, end, valid)``: where the traversal starts and ends (mm) and which rays hit.
    Faces are tried in the order x=0, x=max, y=max, y=0, z=max, z=0; of the faces crossed the two
    furthest apart are kept, the earlier one in that order being the start.
    """
    faces = ((0, 0.0), (0, 1.0), (1, 1.0), (1, 0.0), (2, 1.0), (2, 0.0))
    hits, crossed = [], []
    for axis, side in faces:
        component = ray[:, axis]
        usable = np.trunc(component * 100) != 0  # the caster ignores faces (almost) parallel to the ray
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(usable, (side * box[axis] - point[:, axis]) / np.where(usable, component, 1.0), 0.0)
        hit = point + t[:, None] * ray
        others = [a for a in range(3) if a != axis]
        inside = usable.copy()
        for other in others:
            inside &= (hit[:, other] >= -1e-9) & (hit[:, other] <= box[other] + 1e-9)
        hits.append(hit)
        crossed.append(inside)
    count = len(point)
    best = np.full(count, -1.0)
    start, end = np.zeros_like(point), np.zeros_like(point)
    for j in range(6):
        for k in range(j + 1, 6):
            both = crossed[j] & crossed[k]
            distance = np.where(both, ((hits[j] - hits[k]) ** 2).sum(axis=1), -1.0)
            better = both & (distance > best)
            best = np.where(better, distance, best)
            start[better], end[better] = hits[j][better], hits[k][better]
    return start, end, best >= 0


def _valid_positions(position: np.ndarray, shape: np.ndarray, neighbour: np.ndarray) -> np.ndarray:
    index = np.floor(position)
    return np.all((index >= 0) & (index + neighbour < shape), axis=1)


def _trace_group(
    volume: np.ndarray,
    spacing: np.ndarray,
    start_mm: np.ndarray,
    end_mm: np.ndarray,
    axis: int,
    threshold: float,
) -> np.ndarray:
    """Ray sums (value·mm) of rays whose dominant axis (in voxels) is ``axis``: the caster's algorithm."""
    shape = np.asarray(volume.shape)
    start, end = start_mm / spacing, end_mm / spacing
    step_sign = np.where(start[:, axis] < end[:, axis], 1.0, -1.0)
    span = start[:, axis] - end[:, axis]
    with np.errstate(divide="ignore", invalid="ignore"):
        increment = np.where(span[:, None] != 0, (start - end) / span[:, None], 0.0) * step_sign[:, None]
    increment[:, axis] = step_sign
    plane = np.trunc(start[:, axis])
    position = start.copy()
    for other in (a for a in range(3) if a != axis):  # in-plane coordinates: voxel centres at integers
        position[:, other] += (plane - start[:, axis]) * increment[:, other] * step_sign
        position[:, other] += 0.5 * increment[:, other] - 0.5
    position[:, axis] = plane + 0.5 * step_sign
    planes = np.trunc(np.abs(span)).astype(np.int64)
    neighbour = np.ones(3)
    neighbour[axis] = 0
    # shorten the ray from both ends until its first and one-past-last points are inside (as the caster does)
    active = np.ones(len(planes), dtype=bool)
    ok = np.zeros(len(planes), dtype=bool)
    while active.any():
        idx = np.flatnonzero(active)
        start_ok = _valid_positions(position[idx], shape, neighbour)
        move = ~start_ok
        position[idx[move]] += increment[idx[move]]
        planes[idx[move]] -= 1
        end_ok = _valid_positions(position[idx] + planes[idx, None] * increment[idx], shape, neighbour)
        planes[idx[~end_ok]] -= 1
        both = start_ok & end_ok
        ok[idx] = both
        active[idx] = ~both & (planes[idx] > 1)
    planes = np.where(ok, planes, 0)
    total = np.zeros(len(planes))
    plane_axes = [a for a in range(3) if a != axis]
    for k in range(int(planes.max(initial=0))):
        rays = np.flatnonzero(planes > k)
        at = position[rays] + k * increment[rays]
        index = np.trunc(at).astype(np.int64)
        fraction = at - np.floor(at)
        corner = index.copy()
        values = []
        for du, dv in ((0, 0), (1, 0), (0, 1), (1, 1)):
            corner[:, plane_axes[0]] = index[:, plane_axes[0]] + du
            corner[:, plane_axes[1]] = index[:, plane_axes[1]] + dv
            values.append(volume[corner[:, 0], corner[:, 1], corner[:, 2]].astype(np.float64))
        y, z = fraction[:, plane_axes[0]], fraction[:, plane_axes[1]]
        a, b, c = values[0], values[1] - values[0], values[2] - values[0]
        d = values[3] - values[0] - b - c
        intensity = a + b * y + c * z + d * y * z
        total[rays] += np.where(intensity > threshold, intensity - threshold, 0.0)
    return total * np.sqrt(((increment * spacing) ** 2).sum(axis=1))


def official_ray_sums(
    volume: np.ndarray,
    spacing: tuple[float, float, float],
    view: View,
    detector: tuple[int, int, float],
    geometry: DrrGeometry = DrrGeometry(),
) -> np.ndarray:
    """The official program's ray sums before its 16-bit cast, ``(columns, rows)`` float64.

    Args:
        volume: CT in HU as the official program reads it: ``(i, j, k)`` 16-bit integers with the
            axes of :func:`official_volume` (identity direction).
        spacing: its voxel size (mm).
        view: ``"ap"`` (``-ry 0``) or ``"lateral"`` (``-ry 90``).
        detector: ``(columns, rows, pixel mm)`` from :func:`official_detector`.
        geometry: source and detector distances, threshold.

    Columns run along +i (AP) or +j (lateral), rows along -k.
    """
    spacing_arr = np.asarray(spacing, dtype=np.float64)
    shape = np.asarray(volume.shape, dtype=np.float64)
    columns, rows, pixel = detector
    centre = spacing_arr * shape / 2.0  # index n/2 (voxel i's centre at i * spacing)
    rotation = official_rotation(view)
    u = (np.arange(columns) - (columns - 1) / 2.0) * pixel
    v = (np.arange(rows) - (rows - 1) / 2.0) * pixel
    uu, vv = np.meshgrid(u, v, indexing="ij")
    behind = geometry.source_to_detector_mm - geometry.source_to_isocentre_mm
    local = np.stack([uu.ravel(), vv.ravel(), np.full(uu.size, -behind)], axis=1)
    points = centre + local @ rotation.T
    focal = centre + rotation @ np.array([0.0, 0.0, geometry.source_to_isocentre_mm])
    box_origin = -spacing_arr / 2.0  # the caster's box starts at the first voxel's outer face
    start, end, hit = _box_intercepts(points - box_origin, focal - points, spacing_arr * shape)
    sums = np.zeros(len(points))
    span = np.abs(start / spacing_arr - end / spacing_arr)
    dominant = np.where(
        (span[:, 0] >= span[:, 1]) & (span[:, 0] >= span[:, 2]), 0, np.where(span[:, 1] >= span[:, 2], 1, 2)
    )
    for axis in range(3):
        rays = np.flatnonzero(hit & (dominant == axis))
        if rays.size:
            sums[rays] = _trace_group(
                volume, spacing_arr, start[rays], end[rays], axis, geometry.threshold_hu
            )
    return sums.reshape(columns, rows)


def official_8bit(sums: np.ndarray, where: str = "<CT>") -> np.ndarray:
    """Sums -> the program's 16-bit image -> its 0..255 rescale -> ``/255`` (float32), as the scripts read it."""
    stored = np.clip(np.trunc(sums), -32768, 32767)
    low, high = float(stored.min()), float(stored.max())
    if high <= low:
        raise MedSwinError(f"{where}: the DRR is blank (every ray sums to {low:g}); is this a CT in HU?")
    scale = 255.0 / (high - low)
    grey = np.clip(np.trunc(stored * scale + (0.0 - low * scale)), 0, 255)
    return (grey / 255.0).astype(np.float32)


def _ct_as_int16(image: Image) -> np.ndarray:
    """HU array as the program's ``short`` reader makes it (truncated, clamped)."""
    hu = np.asarray(image.array[0])
    if hu.dtype == np.int16:
        return hu
    return np.clip(np.trunc(hu.astype(np.float32, copy=False)), -32768, 32767).astype(np.int16)


def _normalise(image: np.ndarray) -> np.ndarray:
    low, high = float(image.min()), float(image.max())
    if high <= low:
        return np.zeros_like(image, dtype=np.float32)
    return ((image - low) / (high - low)).astype(np.float32)


def biplanar_drr(ct: Image, labels: Image | None = None, geometry: DrrGeometry | None = None) -> BiplanarDRR:
    """AP and lateral DRRs of ``ct`` plus ``labels`` on the Swin-X2S output grid.

    Args:
        ct: CT in Hounsfield units, one channel, any orientation (oblique included).
        labels: label map on the CT's grid (optional).
        geometry: see :class:`DrrGeometry`; defaults reproduce the official program.

    Returns:
        :class:`BiplanarDRR`; ``ap``/``lateral`` carry their geometry in ``meta["drr"]``. With
        ``values="official"`` they are the official program's DRRs (``(columns, rows)`` of its
        detector, ``/255``), otherwise medswin's views already cropped to the model's view.

    Raises:
        GeometryError: ``ct`` is not one-channel 3D, or ``labels`` is not on ``ct``'s grid.
    """
    geometry = geometry or DrrGeometry()
    geometry.check()
    where = ct.meta.get("path", "<CT in memory>")
    if ct.spatial_dims != 3 or ct.num_channels != 1:
        raise GeometryError(f"{where}: DRRs need a one-channel 3D CT, got array shape {ct.array.shape}")
    if labels is not None:
        difference = labels.grid_difference(ct, atol_mm=1e-3)
        if difference is not None:
            raise GeometryError(
                f"{labels.meta.get('path', '<labels>')}: labels are not on the CT's grid ({difference}); "
                "resample them to the CT first"
            )
    if geometry.values == "official":
        views, centre, voxel, label_centre = _official_views(ct, geometry, str(where))
    else:
        views, centre, voxel = _full_precision_views(ct, geometry)
        label_centre = centre
    direction = geometry.direction
    size = tuple(int(s) for s in geometry.volume_size)
    origin = _grid_origin(label_centre, size, voxel, direction)
    grid_meta = {"modality": "CT", "drr_cube_voxel_mm": voxel}
    grid = Image(
        np.zeros((1, *size), dtype=np.uint8), (voxel,) * 3, origin, direction.copy(), "label", grid_meta
    )
    model_labels = None
    if labels is not None:
        if geometry.values == "official":
            array = _official_labels(ct, labels, geometry)
        else:
            array = resample_to_grid(
                labels, size, (voxel,) * 3, origin, direction, interpolation="nearest", default_value=0
            ).array
        model_labels = grid.with_array(np.ascontiguousarray(array).astype(labels.array.dtype), kind="label")
        model_labels.meta = dict(labels.meta)
    log.debug("DRR cube %.2f mm voxels centred at %s", voxel, np.round(centre, 1))
    return BiplanarDRR(views["ap"], views["lateral"], model_labels, grid)


def _view_image(array: np.ndarray, pixel: float, info: dict[str, Any]) -> Image:
    """A view made in the model frame, stored as a radiograph in the standard display.

    Files and returned views always read like films (AP: x to the patient's left, lateral: x to
    posterior, y to the feet), whatever the frame; :func:`medswin.transforms.radiograph.prepare_view`
    turns them into the frame of the card that reads them, exactly undoing this flip.
    """
    frame = str(info["frame"])
    flips = [frame[0] != "L" if info["view"] == "ap" else frame[1] != "P", frame[2] != "I"]
    for axis, flip in enumerate(flips):
        if flip:
            array = np.flip(array, axis=axis)
    origin = tuple(
        -(n - 1) / 2 * pixel for n in array.shape
    )  # detector mm relative to the isocentre's projection
    info = {**info, "rows": "patient right -> left" if info["view"] == "ap" else "anterior -> posterior"}
    info["columns"] = "head -> feet"
    return Image(
        np.ascontiguousarray(array)[None],
        (pixel, pixel),
        origin,
        np.eye(2),
        "intensity",
        {"modality": "DRR", "drr": info},
    )


def _view_info(view: View, geometry: DrrGeometry, source_side: str, pixel: float, centre: np.ndarray) -> dict:
    return {
        "view": view,
        "values": geometry.values,
        "frame": geometry.frame.upper(),
        "projection": geometry.projection,
        "source_to_isocentre_mm": geometry.source_to_isocentre_mm,
        "source_to_detector_mm": geometry.source_to_detector_mm,
        "source_side": source_side,
        "pixel_mm": pixel,
        "isocentre_lps_mm": [float(c) for c in centre],
    }


def _official_views(
    ct: Image, geometry: DrrGeometry, where: str
) -> tuple[dict[str, Image], np.ndarray, float, np.ndarray]:
    """The official program's two DRRs, its rotation centre (LPS), the cube voxel and the label centre."""
    volume = official_volume(ct, geometry.frame)
    hu = _ct_as_int16(volume)
    detector = official_detector(hu.shape, volume.spacing, geometry.cube_size)
    columns, rows, pixel = detector
    shape = np.asarray(hu.shape, dtype=np.float64)
    centre = (volume.lps_affine @ np.append(shape / 2.0, 1.0))[:3]
    label_centre = (volume.lps_affine @ np.append(np.floor(shape / 2.0), 1.0))[:3]
    frame = geometry.frame.upper()
    sides = {"ap": _SIDE_NAME[frame[1]], "lateral": _SIDE_NAME[_OPPOSITE[frame[0]]]}
    views = {}
    for view in ("ap", "lateral"):
        sums = official_ray_sums(hu, volume.spacing, view, detector, geometry)  # type: ignore[arg-type]
        info = _view_info(view, geometry, sides[view], pixel, centre)
        info.update(
            detector=[columns, rows],
            raw_max=float(sums.max()),
            saturated_fraction=float((sums >= 32768).mean()),
        )
        views[view] = _view_image(official_8bit(sums, where), pixel, info)
    return views, centre, rows * pixel / geometry.cube_size, label_centre


_SIDE_NAME = {"L": "left", "R": "right", "P": "posterior", "A": "anterior"}


def _official_labels(ct: Image, labels: Image, geometry: DrrGeometry) -> np.ndarray:
    """Labels as the official chain makes them: nearest onto ``size × size × rows`` voxels of
    ``longest / rows`` mm about voxel n//2, last axis flipped, zero-padded to a cube, nearest-resized
    to ``cube_size``³ (torch 'nearest': source index ``floor(i · rows / cube)``), centre crop."""
    volume = official_volume(ct, geometry.frame)
    on_volume = official_volume(labels, geometry.frame)
    columns, rows, _ = official_detector(volume.shape, volume.spacing, geometry.cube_size)
    extents = [
        np.float32(float(s) * float(np.float32(n))) for n, s in zip(volume.shape, volume.spacing, strict=True)
    ]
    voxel = float(np.float32(max(extents) / np.float32(rows)))
    size = (columns, columns, rows)
    centre = (volume.lps_affine @ np.append(np.floor(np.asarray(volume.shape) / 2.0), 1.0))[:3]
    origin = centre - volume.direction @ ((np.asarray(size, dtype=np.float64) - 1.0) / 2.0 * voxel)
    sampled = resample_to_grid(
        on_volume, size, (voxel,) * 3, origin, volume.direction, interpolation="nearest", default_value=0
    ).array[0]
    sampled = sampled[:, :, ::-1]
    pad = [((rows - n) // 2, rows - n - (rows - n) // 2) for n in sampled.shape]
    cube = np.pad(sampled, pad)
    cube_size = geometry.cube_size
    pick = np.minimum(np.floor(np.arange(cube_size) * (rows / cube_size)).astype(np.int64), rows - 1)
    cube = cube[np.ix_(pick, pick, pick)]
    starts = [(cube_size - n) // 2 for n in geometry.volume_size]
    x, y, z = geometry.volume_size
    return cube[None, starts[0] : starts[0] + x, starts[1] : starts[1] + y, starts[2] : starts[2] + z]


def _full_precision_views(ct: Image, geometry: DrrGeometry) -> tuple[dict[str, Image], np.ndarray, float]:
    """medswin's own DRRs: cube over the longest extent about the field of view's middle, true range."""
    centre, voxel = cube_grid(ct, geometry.cube_size)
    direction = geometry.direction
    fine = geometry.oversample
    fine_size = (geometry.cube_size * fine,) * 3
    fine_voxel = voxel / fine
    cube = resample_to_grid(
        ct,
        fine_size,
        (fine_voxel,) * 3,
        _grid_origin(centre, fine_size, fine_voxel, direction),
        direction,
        interpolation="linear",
        default_value=-1024.0,
    )
    values = hu_to_attenuation(cube.array[0], geometry.intensity, geometry.threshold_hu)
    pixel = geometry.detector_pixel_mm or voxel
    x, _, z = geometry.volume_size
    views = {}
    for view in ("ap", "lateral"):
        raw = line_integrals(values, fine_voxel, view, (x * fine, z * fine), pixel / fine, geometry)
        raw = raw.reshape(x, fine, z, fine).mean(axis=(1, 3))  # detector sub-pixels -> pixels
        side = geometry.ap_source if view == "ap" else geometry.lateral_source
        info = _view_info(view, geometry, side, pixel, centre)
        info.update(raw_min=float(raw.min()), raw_max=float(raw.max()))
        views[view] = _view_image(_normalise(raw), pixel, info)
    return views, centre, voxel
