"""The one image type passed between medswin's stages: voxels plus physical geometry.

Conventions (the same as ITK/DICOM for geometry, the same as nibabel/MONAI for the array):

- ``array`` is channel-first, ``(C, X, Y, Z)`` for volumes and ``(C, X, Y)`` for 2D images;
  spatial axis ``i`` is the ITK index axis ``i`` (so SimpleITK's ``(Z, Y, X)`` arrays are transposed).
- ``spacing`` (mm), ``origin`` (mm, centre of voxel 0) and ``direction`` (columns are the axis
  directions) are in the patient's **LPS** frame, as in DICOM and ITK.
- ``affine`` is the **RAS** voxel-to-world matrix nibabel and MONAI use:
  ``affine = diag(-1, -1, 1, 1) @ [[direction * spacing, origin], [0, 1]]``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from medswin.errors import GeometryError

__all__ = ["Image", "ImageKind", "lps_to_ras", "orientation_code"]

ImageKind = Literal["intensity", "label"]


def lps_to_ras(dims: int) -> np.ndarray:
    """The (dims+1)² homogeneous matrix flipping the first two world axes (LPS <-> RAS)."""
    flip = np.eye(dims + 1)
    flip[0, 0] = flip[1, 1] = -1.0
    return flip


def orientation_code(affine: np.ndarray) -> str:
    """Axis code of a RAS affine ("RAS", "LPS", "PSR", ...), as nibabel's ``aff2axcodes`` writes it."""
    import nibabel as nib

    return "".join(nib.orientations.aff2axcodes(np.asarray(affine)))


@dataclass
class Image:
    """Voxel array with its geometry, kind and source metadata.

    Args:
        array: channel-first voxels, shape ``(C, X, Y, Z)`` or ``(C, X, Y)``.
        spacing: voxel size in mm along each spatial axis.
        origin: LPS position (mm) of the centre of voxel ``(0, 0, 0)``.
        direction: ``(d, d)`` matrix whose columns are the unit LPS directions of the array axes.
        kind: ``"intensity"`` (resampled linearly) or ``"label"`` (nearest neighbour, integer).
        meta: what outputs need from the source: ``path``, ``modality``, and for DICOM the series'
            identifying attributes (``dicom`` dict) and ``source_files`` for DICOM-SEG references.
    """

    array: np.ndarray
    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: np.ndarray
    kind: ImageKind = "intensity"
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.array = np.asarray(self.array)
        self.spacing = tuple(float(s) for s in self.spacing)
        self.origin = tuple(float(o) for o in self.origin)
        self.direction = np.asarray(self.direction, dtype=np.float64)
        dims = len(self.spacing)
        where = self.meta.get("path", "<in memory>")
        if dims not in (2, 3):
            raise GeometryError(f"{where}: images must have 2 or 3 spatial axes, got spacing {self.spacing}")
        if self.array.ndim != dims + 1:
            raise GeometryError(
                f"{where}: array of shape {self.array.shape} does not match {dims} spatial axes plus a channel axis"
            )
        if len(self.origin) != dims or self.direction.shape != (dims, dims):
            raise GeometryError(f"{where}: origin/direction sizes do not match {dims} spatial axes")
        if not all(np.isfinite(s) and s > 0 for s in self.spacing):
            raise GeometryError(f"{where}: spacing must be finite and positive, got {self.spacing}")
        if not np.all(np.isfinite(self.origin)) or not np.all(np.isfinite(self.direction)):
            raise GeometryError(f"{where}: origin and direction must be finite")
        if abs(abs(np.linalg.det(self.direction)) - 1.0) > 1e-3:
            raise GeometryError(
                f"{where}: direction matrix is not orthonormal (det={np.linalg.det(self.direction):.4f})"
            )

    # ----------------------------------------------------------------- geometry
    @property
    def spatial_dims(self) -> int:
        return len(self.spacing)

    @property
    def shape(self) -> tuple[int, ...]:
        """Spatial shape ``(X, Y, Z)``."""
        return tuple(self.array.shape[1:])

    @property
    def num_channels(self) -> int:
        return int(self.array.shape[0])

    @property
    def lps_affine(self) -> np.ndarray:
        """Voxel index -> LPS world (mm), homogeneous."""
        d = self.spatial_dims
        affine = np.eye(d + 1)
        affine[:d, :d] = self.direction * np.asarray(self.spacing)[None, :]
        affine[:d, d] = self.origin
        return affine

    @property
    def affine(self) -> np.ndarray:
        """Voxel index -> RAS world (mm), homogeneous; what nibabel and MONAI call the affine."""
        return lps_to_ras(self.spatial_dims) @ self.lps_affine

    @property
    def orientation(self) -> str:
        """RAS-style axis code of the array axes, e.g. ``"LPS"`` for a DICOM axial series."""
        if self.spatial_dims == 2:
            padded = np.eye(4)
            padded[:2, :2] = self.affine[:2, :2]
            return orientation_code(padded)[:2]
        return orientation_code(self.affine)

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel in mL (1 mL = 1000 mm³); area in cm² for 2D images."""
        return float(np.prod(self.spacing)) / (1000.0 if self.spatial_dims == 3 else 100.0)

    @classmethod
    def from_affine(
        cls,
        array: np.ndarray,
        affine: np.ndarray,
        kind: ImageKind = "intensity",
        meta: dict[str, Any] | None = None,
    ) -> Image:
        """Build from a channel-first array and a RAS affine (nibabel/MONAI convention)."""
        affine = np.asarray(affine, dtype=np.float64)
        dims = affine.shape[0] - 1
        lps = lps_to_ras(dims) @ affine
        linear = lps[:dims, :dims]
        spacing = np.linalg.norm(linear, axis=0)
        where = (meta or {}).get("path", "<in memory>")
        if np.any(spacing <= 0) or not np.all(np.isfinite(spacing)):
            raise GeometryError(
                f"{where}: affine has a zero or invalid axis (spacing {tuple(round(float(s), 6) for s in spacing)} mm)"
            )
        direction = linear / spacing[None, :]
        # Sheared affines cannot be expressed as spacing+direction; refuse rather than silently drift.
        if not np.allclose(direction.T @ direction, np.eye(dims), atol=1e-4):
            raise GeometryError(
                f"{where}: affine is sheared (axes not orthogonal); medswin needs an orthogonal grid"
            )
        return cls(array, tuple(spacing), tuple(lps[:dims, dims]), direction, kind, dict(meta or {}))

    def with_array(self, array: np.ndarray, kind: ImageKind | None = None, **meta: Any) -> Image:
        """A new image on the same grid (same geometry and metadata) holding ``array``."""
        array = np.asarray(array)
        if array.ndim == self.spatial_dims:
            array = array[None]
        if tuple(array.shape[1:]) != self.shape:
            raise GeometryError(f"array shape {array.shape[1:]} differs from the grid {self.shape}")
        merged = copy.deepcopy(self.meta)
        merged.update(meta)
        return Image(array, self.spacing, self.origin, self.direction.copy(), kind or self.kind, merged)

    def same_grid(self, other: Image, atol_mm: float = 1e-4) -> bool:
        """True when both images sample the same points in space (shape, spacing, origin, direction)."""
        return (
            self.shape == other.shape
            and np.allclose(self.spacing, other.spacing, atol=atol_mm)
            and np.allclose(self.origin, other.origin, atol=atol_mm)
            and np.allclose(self.direction, other.direction, atol=1e-5)
        )

    def grid_difference(self, other: Image, atol_mm: float = 1e-4) -> str | None:
        """Human-readable first geometry difference between two images, or ``None`` if on one grid."""
        if self.shape != other.shape:
            return f"shape {self.shape} vs {other.shape}"
        if not np.allclose(self.spacing, other.spacing, atol=atol_mm):
            return f"spacing {self.spacing} vs {other.spacing} mm"
        if not np.allclose(self.origin, other.origin, atol=atol_mm):
            return f"origin {self.origin} vs {other.origin} mm"
        if not np.allclose(self.direction, other.direction, atol=1e-5):
            return f"direction {self.direction.round(5).tolist()} vs {other.direction.round(5).tolist()}"
        return None

    # ------------------------------------------------------------- conversions
    def to_metatensor(self) -> Any:
        """MONAI ``MetaTensor`` (C, X, Y, Z) with the RAS affine; exact, no copy of geometry rounding."""
        import torch
        from monai.data import MetaTensor

        meta = {"filename_or_obj": str(self.meta.get("path", "")), "space": "RAS"}
        return MetaTensor(
            torch.as_tensor(np.ascontiguousarray(self.array)), affine=torch.as_tensor(self.affine), meta=meta
        )

    @classmethod
    def from_metatensor(
        cls, tensor: Any, kind: ImageKind = "intensity", meta: dict[str, Any] | None = None
    ) -> Image:
        """Inverse of :meth:`to_metatensor`: reads the MetaTensor's affine (RAS unless its meta says LPS)."""
        affine = np.asarray(tensor.affine.detach().cpu().numpy(), dtype=np.float64)
        space = str(tensor.meta.get("space", "RAS")).upper() if hasattr(tensor, "meta") else "RAS"
        if space == "LPS":
            affine = lps_to_ras(affine.shape[0] - 1) @ affine
        array = tensor.detach().cpu().numpy() if hasattr(tensor, "detach") else np.asarray(tensor)
        return cls.from_affine(array, affine, kind, meta)

    def to_sitk(self, channel: int | None = None) -> Any:
        """SimpleITK image (one channel, or a vector image of all channels when ``channel`` is None and C > 1)."""
        import SimpleITK as sitk

        d = self.spatial_dims
        axes = tuple(range(d - 1, -1, -1))  # (X, Y, Z) -> SimpleITK's (Z, Y, X)
        if channel is None and self.num_channels > 1:
            data = np.moveaxis(self.array, 0, -1)
            data = np.transpose(data, (*axes, d))
            image = sitk.GetImageFromArray(np.ascontiguousarray(data), isVector=True)
        else:
            data = np.transpose(self.array[channel or 0], axes)
            image = sitk.GetImageFromArray(np.ascontiguousarray(data))
        image.SetSpacing(self.spacing)
        image.SetOrigin(self.origin)
        image.SetDirection(tuple(self.direction.ravel()))
        return image

    @classmethod
    def from_sitk(
        cls, image: Any, kind: ImageKind = "intensity", meta: dict[str, Any] | None = None
    ) -> Image:
        """Build from a SimpleITK image (scalar or vector pixels) keeping its geometry exactly."""
        import SimpleITK as sitk

        d = image.GetDimension()
        data = sitk.GetArrayFromImage(image)
        axes = tuple(range(d - 1, -1, -1))
        if image.GetNumberOfComponentsPerPixel() > 1:
            data = np.transpose(data, (*axes, d))
            data = np.moveaxis(data, -1, 0)
        else:
            data = np.transpose(data, axes)[None]
        direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(d, d)
        return cls(
            np.ascontiguousarray(data),
            image.GetSpacing(),
            image.GetOrigin(),
            direction,
            kind,
            dict(meta or {}),
        )

    # ------------------------------------------------------------------- repr
    def __repr__(self) -> str:
        spacing = ", ".join(f"{s:.3g}" for s in self.spacing)
        megabytes = self.array.nbytes / 2**20
        source = self.meta.get("path")
        where = f"; source: {source}" if source else ""
        return (
            f"Image({self.kind}; channels: {self.num_channels}; shape: {self.shape}; spacing: ({spacing}) mm; "
            f"orientation: {self.orientation}+; dtype: {self.array.dtype}; memory: {megabytes:.1f} MiB{where})"
        )
