"""``read_image``: any supported file, folder or zip to one :class:`Image` with exact geometry.

Formats are recognised by content first (magic bytes), then by extension:

- NIfTI-1/2 (``.nii``, ``.nii.gz``) through nibabel: the sform when its code is set, else the
  qform; ``scl_slope``/``scl_inter`` applied (float output) when they change values; 4D -> channels.
  A ``.nii.gz`` is read to its end so that gzip checks its CRC (nibabel alone returns bit-flipped
  voxels silently); a header promising more voxels than the file holds, or a zero, negative or
  non-finite ``pixdim`` where no sform gives the geometry (nibabel would substitute 1 mm or the
  absolute value), is refused.
- NRRD, MetaImage (``.nrrd``, ``.nhdr``, ``.mha``, ``.mhd``) through SimpleITK; vector pixels -> channels.
- DICOM: a folder (searched recursively), a ``.zip`` of one, or one file (a slice, a multi-frame
  volume, or a 2D radiograph); see :mod:`medswin.io.dicom_series` for the checks.
- PNG, TIFF, JPEG through Pillow as 2D images (1 mm pixels unless ``spacing`` is given).

Every failure is an :class:`~medswin.errors.ImageReadError` naming the file. NaN or infinite voxels
are kept (viewers show them); :func:`require_finite` refuses them where an image feeds a model.
"""

from __future__ import annotations

import gzip
import logging
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from medswin.errors import GeometryError, ImageReadError
from medswin.io.archive import extracted_zip
from medswin.io.dicom_series import (
    SeriesInfo,
    discover_series,
    no_images_error,
    read_dicom_file,
    read_header,
    read_series,
    scan_folder,
    series_info,
    summarise,
)
from medswin.io.formats import endings, format_ending
from medswin.io.image import Image, ImageKind

__all__ = ["read_image", "list_series", "detect_format", "require_finite", "SeriesInfo", "ImageFormat"]

log = logging.getLogger(__name__)

ImageFormat = Literal["nifti", "itk", "dicom", "dicom-folder", "zip", "raster"]

#: volumes SimpleITK reads (MetaImage, NRRD); NIfTI goes through nibabel.
_ITK_SUFFIXES = tuple(e for e in endings("volume") if not e.startswith(".nii"))
# Errors that mean "the bytes are not what the header promised" (truncated or corrupt files).
_CORRUPT_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile, OSError, ValueError)


def detect_format(path: str | Path) -> ImageFormat:
    """Which reader handles ``path``, from its first bytes (or its extension when they say nothing)."""
    path = Path(path)
    if not path.exists():
        raise ImageReadError(f"{path}: no such file or folder")
    if path.is_dir():
        return "dicom-folder"
    try:
        with open(path, "rb") as stream:
            head = stream.read(352)
    except OSError as error:
        raise ImageReadError(f"{path}: cannot open ({error.strerror or error})") from error
    suffix = format_ending(path)
    if not head:
        raise ImageReadError(f"{path}: the file is empty (0 bytes)")
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if head[:2] == b"\x1f\x8b":
        if suffix == ".nii.gz":
            return "nifti"
        raise ImageReadError(
            f"{path}: gzip-compressed file that is not a .nii.gz; medswin reads .nii.gz only"
        )
    if head[344:348] in (b"n+1\x00", b"ni1\x00") or head[4:8] == b"n+2\x00":
        return "nifti"
    if head[128:132] == b"DICM":
        return "dicom"
    if (
        head[:8] == b"\x89PNG\r\n\x1a\n"
        or head[:4] in (b"II*\x00", b"MM\x00*")
        or head[:3] == b"\xff\xd8\xff"
    ):
        return "raster"
    if head[:4] == b"NRRD" or head.startswith(b"ObjectType") or suffix in _ITK_SUFFIXES:
        return "itk"
    if suffix in (".nii", ".nii.gz"):
        return "nifti"
    if suffix == ".dcm":
        return "dicom"
    raise ImageReadError(
        f"{path}: unrecognised file format; medswin reads NIfTI (.nii, .nii.gz), NRRD, MetaImage (.mha, .mhd), "
        "DICOM (file, folder or .zip), PNG and TIFF"
    )


# ------------------------------------------------------------------- labels
def _smallest_integer_type(low: float, high: float) -> np.dtype:
    for dtype in (np.uint8, np.uint16, np.int16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return np.dtype(dtype)
    return np.dtype(np.int64)


def as_label_array(array: np.ndarray, where: str) -> np.ndarray:
    """Integer label values from ``array``: floats must hold whole numbers (many label NIfTIs are float)."""
    if array.dtype == bool:
        return array.astype(np.uint8)
    if np.issubdtype(array.dtype, np.integer):
        return array
    if not np.all(np.isfinite(array)):
        raise ImageReadError(f"{where}: label image holds NaN or infinite values")
    fractional = array != np.round(array)
    if fractional.any():
        raise ImageReadError(
            f"{where}: label image holds non-integer values (e.g. {array[fractional].flat[0]:g}); "
            "read it as an intensity image or round it first"
        )
    if array.size == 0:
        return array.astype(np.uint8)
    return array.astype(_smallest_integer_type(float(array.min()), float(array.max())))


# -------------------------------------------------------------------- NIfTI
def _nifti_affine(header: Any, where: str) -> tuple[np.ndarray, str]:
    sform, sform_code = header.get_sform(coded=True)
    qform, qform_code = header.get_qform(coded=True)
    candidates = []
    if sform_code and sform_code > 0:
        candidates.append((sform, "sform"))
    if qform_code and qform_code > 0:
        candidates.append((qform, "qform"))
    if not candidates:
        log.warning(
            "%s: neither sform nor qform is set; using the voxel sizes only (orientation unknown)", where
        )
        return header.get_base_affine(), "base"
    for index, (affine, name) in enumerate(candidates):
        norms = np.linalg.norm(affine[:3, :3], axis=0)
        if not np.all(np.isfinite(norms)) or np.any(norms == 0):
            continue  # a zero or non-finite axis: the next form, or Image refuses it
        linear = affine[:3, :3] / norms
        if np.allclose(linear.T @ linear, np.eye(3), atol=1e-4):
            if index > 0:
                log.warning("%s: the sform is sheared or degenerate; using the qform instead", where)
            return affine, name
    return candidates[0][0], candidates[0][1]  # sheared; Image refuses it with a clear message


def _stream_size(path: Path) -> int:
    """Bytes of the file's content: a .nii.gz is decompressed to its end, which makes gzip check its
    CRC and length (nibabel stops after the voxels and would return silently damaged data)."""
    with open(path, "rb") as stream:
        compressed = stream.read(2) == b"\x1f\x8b"
    if not compressed:
        return path.stat().st_size
    total = 0
    with gzip.open(path, "rb") as stream:
        while chunk := stream.read(1 << 24):
            total += len(chunk)
    return total


def _check_nifti_header(path: Path, nifti: Any, size: int, affine_source: str) -> None:
    """Refuse headers that promise more voxels than the file holds, or voxel sizes nibabel would invent."""
    import math

    from nibabel.openers import ImageOpener

    header = nifti.header
    shape = tuple(int(n) for n in header.get_data_shape())
    needed = int(header.get_data_offset()) + math.prod(shape) * header.get_data_dtype().itemsize
    if needed > size:
        raise ImageReadError(
            f"{path}: the header promises {'×'.join(map(str, shape))} voxels of {header.get_data_dtype()} "
            f"({needed} bytes with the header) but the file holds {size} bytes; it is truncated or its header "
            "is damaged"
        )
    if affine_source == "sform":
        return  # the sform alone gives the geometry; pixdim is not used
    with ImageOpener(str(path)) as stream:  # nibabel's own check replaces bad pixdim values silently
        unfixed = type(header).from_fileobj(stream, check=False)
    pixdim = np.asarray(unfixed["pixdim"], dtype=np.float64)
    for axis in range(1, min(len(shape), 3) + 1):
        if not (np.isfinite(pixdim[axis]) and pixdim[axis] > 0):
            raise ImageReadError(
                f"{path}: voxel size pixdim[{axis}] is {pixdim[axis]:g} in the header and no sform gives the "
                "geometry; voxel sizes must be positive numbers of mm. Fix the header (or set an sform)"
            )


def _read_nifti(path: Path, kind: ImageKind) -> Image:
    import nibabel as nib
    from nibabel.spatialimages import HeaderDataError, HeaderTypeError

    where = str(path)
    try:
        size = _stream_size(path)
        nifti = nib.load(str(path), mmap=False)
        if not isinstance(nifti, nib.Nifti1Image | nib.Nifti2Image):
            raise ImageReadError(
                f"{path}: {type(nifti).__name__} is not a NIfTI volume; medswin reads NIfTI-1/2 images"
            )
        header = nifti.header
        affine, source = _nifti_affine(header, where)
        _check_nifti_header(path, nifti, size, source)
        raw = np.asanyarray(nifti.dataobj.get_unscaled())
    except (nib.filebasedimages.ImageFileError, HeaderDataError, HeaderTypeError) as error:
        raise ImageReadError(f"{path}: not a valid NIfTI file ({error})") from error
    except (*_CORRUPT_ERRORS, MemoryError) as error:
        raise ImageReadError(
            f"{path}: the NIfTI file is truncated or corrupt ({type(error).__name__}: {error}); re-export or re-copy it"
        ) from error
    raw = raw.astype(raw.dtype.newbyteorder("="), copy=False)  # big-endian files -> native order
    slope, inter = nifti.dataobj.slope, nifti.dataobj.inter
    scaled = (np.isfinite(slope) and slope not in (0.0, 1.0)) or (np.isfinite(inter) and inter != 0.0)
    if scaled:
        compute = np.float64 if raw.dtype == np.float64 else np.float32
        data = raw.astype(compute) * compute(slope) + compute(inter)
    else:
        data = raw

    spatial = data.ndim
    if data.ndim == 5 and data.shape[3] == 1:  # (X, Y, Z, 1, C): vector-valued voxels
        data = np.moveaxis(data[:, :, :, 0, :], -1, 0)
    elif data.ndim == 4:  # (X, Y, Z, T): channels
        data = np.moveaxis(data, -1, 0)
    elif data.ndim in (2, 3):
        data = data[None]
    else:
        raise ImageReadError(f"{path}: NIfTI array of shape {raw.shape} has too many axes for medswin")
    if spatial == 2:  # a 2D image: keep the in-plane part of the affine
        affine = affine[np.ix_([0, 1, 3], [0, 1, 3])]

    sform, sform_code = header.get_sform(coded=True)
    qform, qform_code = header.get_qform(coded=True)
    meta: dict[str, Any] = {
        "path": where,
        "format": "nifti",
        "nifti": {
            "affine_source": source,
            "sform": None if sform is None else np.asarray(sform).tolist(),
            "sform_code": int(sform_code or 0),
            "qform": None if qform is None else np.asarray(qform).tolist(),
            "qform_code": int(qform_code or 0),
            "stored_dtype": str(raw.dtype),
            "scaled": bool(scaled),
        },
    }
    try:
        return Image.from_affine(data, affine, kind, meta)
    except GeometryError as error:
        detail = str(error).removeprefix(f"{where}: ")
        raise ImageReadError(f"{path}: invalid NIfTI geometry: {detail}") from error


# -------------------------------------------------------------- NRRD / MHA
def _read_itk(path: Path, kind: ImageKind) -> Image:
    import SimpleITK as sitk

    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as error:
        first = str(error).strip().splitlines()
        detail = next(
            (line for line in first if "rror" in line or "xception" in line), first[-1] if first else ""
        )
        raise ImageReadError(f"{path}: SimpleITK cannot read this file ({detail.strip()[:300]})") from error
    if image.GetDimension() not in (2, 3):
        raise ImageReadError(f"{path}: {image.GetDimension()}D image; medswin reads 2D and 3D images")
    meta = {"path": str(path), "format": format_ending(path).lstrip(".")}
    try:
        return Image.from_sitk(image, kind, meta)
    except GeometryError as error:
        raise ImageReadError(f"{path}: invalid geometry: {error}") from error


# ------------------------------------------------------------------- raster
def _read_raster(path: Path, kind: ImageKind, spacing: Sequence[float] | None) -> Image:
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError
    from PIL.Image import DecompressionBombError

    try:
        with PILImage.open(path) as picture:
            if getattr(picture, "n_frames", 1) > 1:
                raise ImageReadError(
                    f"{path}: multi-page image ({picture.n_frames} pages); save volumes as NIfTI or NRRD"
                )
            mode = picture.mode
            if mode in ("P", "PA", "CMYK", "YCbCr", "RGBA", "LA", "1"):
                picture = picture.convert("L" if mode in ("LA", "1") else "RGB")
            pixels = np.asarray(picture)
    except (UnidentifiedImageError, DecompressionBombError, *_CORRUPT_ERRORS) as error:
        raise ImageReadError(f"{path}: unreadable or truncated image file ({error})") from error
    array = np.transpose(pixels, (2, 1, 0)) if pixels.ndim == 3 else pixels.T[None]
    pixel_spacing = tuple(float(s) for s in spacing) if spacing is not None else (1.0, 1.0)
    if len(pixel_spacing) != 2:
        raise ImageReadError(f"{path}: a 2D image needs 2 spacing values, got {pixel_spacing}")
    meta = {
        "path": str(path),
        "format": format_ending(path).lstrip("."),
        "pixel_spacing_assumed": spacing is None,
    }
    return Image(np.ascontiguousarray(array), pixel_spacing, (0.0, 0.0), np.eye(2), kind, meta)


# -------------------------------------------------------------------- DICOM
def _choose_series(
    series: dict[str, list[tuple[Path, Any]]], where: Path, series_uid: str | None
) -> list[tuple[Path, Any]]:
    infos = summarise(series)
    if series_uid is not None:
        if series_uid not in series:
            listed = "; ".join(
                f"{s.uid} ({s.modality} {s.description!r}, {s.num_frames} frames)" for s in infos
            )
            raise ImageReadError(f"{where}: no series with SeriesInstanceUID {series_uid}; found: {listed}")
        return series[series_uid]
    chosen = infos[0]
    if len(infos) > 1:
        log.info(
            "%s: %d series found; reading the largest, %s (%s %r, %d frames); choose another with series_uid",
            where,
            len(infos),
            chosen.uid,
            chosen.modality,
            chosen.description,
            chosen.num_frames,
        )
    return series[chosen.uid]


def _read_dicom_folder(
    folder: Path, where: Path, series_uid: str | None, kind: ImageKind, allow_gaps: bool
) -> Image:
    series, non_images, other = scan_folder(folder)
    if not series:
        raise no_images_error(where, non_images, other)
    members = _choose_series(series, where, series_uid)
    return read_series(members, str(where), kind=kind, allow_gaps=allow_gaps)


def _read_dicom_zip(
    path: Path, series_uid: str | None, kind: ImageKind, allow_gaps: bool, scratch: Path | None
) -> Image:
    with extracted_zip(path, scratch=scratch) as folder:
        image = _read_dicom_folder(folder, path, series_uid, kind, allow_gaps)
        # The temporary folder disappears: keep the members' names inside the archive instead.
        image.meta["source_files"] = [
            Path(f).relative_to(folder).as_posix() for f in image.meta["source_files"]
        ]
        image.meta["source_archive"] = str(path)
    return image


# ---------------------------------------------------------------------- API
def read_image(
    path: str | Path,
    *,
    series_uid: str | None = None,
    kind: ImageKind = "intensity",
    allow_gaps: bool = False,
    spacing: Sequence[float] | None = None,
    scratch: str | Path | None = None,
) -> Image:
    """Read a medical image file, DICOM folder or DICOM zip into an :class:`Image`.

    Args:
        path: a NIfTI, NRRD, MetaImage, DICOM, PNG or TIFF file; a folder of DICOM files; or a zip of one.
        series_uid: for DICOM folders/zips holding several series, the SeriesInstanceUID to read
            (default: the series with the most frames).
        kind: ``"label"`` makes integer voxels (float files holding whole numbers are converted).
        allow_gaps: accept a DICOM series with missing slices or an uneven slice step by
            interpolating it onto a regular grid (recorded in ``meta["dicom"]``) instead of refusing it.
        spacing: pixel size (mm) of PNG/TIFF/JPEG images, which carry no trustworthy physical size.
        scratch: folder a DICOM zip is extracted in while it is read (default: the system's temporary
            folder); removed afterwards either way.

    Raises:
        ImageReadError: naming the path and the problem, for every unreadable input.
    """
    path = Path(path)
    if kind not in ("intensity", "label"):
        raise ValueError(f"kind must be 'intensity' or 'label', got {kind!r}")
    fmt = detect_format(path)
    log.debug("reading %s as %s", path, fmt)
    if fmt == "nifti":
        image = _read_nifti(path, kind)
    elif fmt == "itk":
        image = _read_itk(path, kind)
    elif fmt == "raster":
        image = _read_raster(path, kind, spacing)
    elif fmt == "dicom":
        image = read_dicom_file(path, kind=kind, allow_gaps=allow_gaps)
    elif fmt == "dicom-folder":
        image = _read_dicom_folder(path, path, series_uid, kind, allow_gaps)
    else:
        image = _read_dicom_zip(
            path, series_uid, kind, allow_gaps, None if scratch is None else Path(scratch)
        )
    if image.array.size == 0:
        raise ImageReadError(f"{path}: the image holds no voxels (shape {image.shape})")
    if kind == "label":
        image.array = as_label_array(image.array, str(path))
    return image


def require_finite(image: Image, where: str | Path | None = None) -> Image:
    """``image`` unchanged, or :class:`ImageReadError` when a voxel is NaN or infinite.

    Readers keep such voxels (viewers and ``medswin info`` show them); a model fed them returns
    garbage without complaint, so prediction inputs go through this check.
    """
    array = image.array
    if np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.complexfloating):
        finite = np.isfinite(array)
        if not finite.all():
            bad = array.size - int(np.count_nonzero(finite))
            first = tuple(int(i) for i in np.argwhere(~finite)[0])
            raise ImageReadError(
                f"{where or image.meta.get('path', '<in memory>')}: {bad} voxel(s) are NaN or infinite (the "
                f"first, voxel {first[1:]} of channel {first[0]}, is {array[first]}); replace them (e.g. by "
                "the background value) before predicting"
            )
    return image


def list_series(path: str | Path) -> list[SeriesInfo]:
    """The image series in a DICOM folder, zip or file, largest first (``[]`` for other formats).

    Raises :class:`ImageReadError` when a folder or zip holds no DICOM image at all.
    """
    path = Path(path)
    fmt = detect_format(path)
    if fmt == "dicom-folder":
        return discover_series(path)
    if fmt == "zip":
        with extracted_zip(path) as folder:
            try:
                infos = discover_series(folder)
            except ImageReadError as error:
                raise ImageReadError(str(error).replace(str(folder), str(path))) from None
            return [
                SeriesInfo(
                    s.uid,
                    s.number,
                    s.description,
                    s.modality,
                    s.num_frames,
                    s.shape,
                    tuple(Path(f).relative_to(folder).as_posix() for f in s.files),
                    s.spacing,
                )
                for s in infos
            ]
    if fmt == "dicom":
        ds = read_header(path, strict=True)
        if ds is None or "Rows" not in ds:
            raise ImageReadError(f"{path}: DICOM file holds no image")
        return [series_info(str(ds.get("SeriesInstanceUID", "")), [(path, ds)])]
    return []
