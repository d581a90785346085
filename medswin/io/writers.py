"""``write_image``: an :class:`Image` to NIfTI, NRRD or MetaImage, atomically.

Atomic means (:func:`medswin.files.atomic_output`, re-exported here for the writers that use
it): everything is written into a private temporary folder beside the target, checked
(no empty file), then moved into place with ``os.replace``. A failure leaves the target as it
was and no temporary file behind; a reader never sees a half-written output.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from medswin.errors import ImageReadError, ImageWriteError
from medswin.files import atomic_output, system_cause, write_failure
from medswin.io.formats import endings, format_ending
from medswin.io.image import Image
from medswin.io.readers import as_label_array

__all__ = [
    "write_image",
    "write_labels",
    "atomic_output",
    "write_failure",
    "check_output_file",
    "label_dtype",
    "WRITABLE_SUFFIXES",
]

log = logging.getLogger(__name__)

WRITABLE_SUFFIXES = endings(writable=True)
_NIFTI_LABEL_INTENT = "label"


def label_dtype(array: np.ndarray) -> np.dtype:
    """uint8 for labels up to 255, uint16 up to 65535; signed/wider types only when values need them."""
    if array.size == 0:
        return np.dtype(np.uint8)
    low, high = int(array.min()), int(array.max())
    for dtype in (np.uint8, np.uint16, np.int16, np.int32, np.uint32):
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return np.dtype(dtype)
    return np.dtype(np.int64)


def _prepared_array(image: Image, dtype: Any, where: Path) -> np.ndarray:
    """Voxels in the type the file will hold: labels narrowed, exotic types mapped to supported ones."""
    array = image.array
    array = array.astype(array.dtype.newbyteorder("="), copy=False)
    if image.kind == "label" or array.dtype == bool:
        try:
            array = as_label_array(array, str(where))
        except ImageReadError as error:
            raise ImageWriteError(str(error)) from error
        if dtype is None:
            dtype = label_dtype(array)
    if dtype is not None:
        target = np.dtype(dtype)
        if np.issubdtype(target, np.integer) and array.size:
            info = np.iinfo(target)
            if array.min() < info.min or array.max() > info.max:
                raise ImageWriteError(
                    f"{where}: values {array.min()}..{array.max()} do not fit {target}; choose a wider dtype"
                )
            if not np.issubdtype(array.dtype, np.integer) and np.any(array != np.round(array)):
                log.warning("%s: rounding non-integer values to %s", where, target)
                array = np.round(array)
        return array.astype(target, copy=False)
    if array.dtype == np.float16:
        return array.astype(np.float32)
    if array.dtype in (np.int64, np.uint64):
        # NIfTI readers handle 64-bit integers poorly; narrow when the values allow it.
        low, high = (int(array.min()), int(array.max())) if array.size else (0, 0)
        if np.iinfo(np.int32).min <= low and high <= np.iinfo(np.int32).max:
            return array.astype(np.int32)
        return array.astype(np.float64)
    return array


def _embedded_affine(image: Image) -> np.ndarray:
    """4×4 RAS affine (2D images get a unit third axis)."""
    if image.spatial_dims == 3:
        return image.affine
    affine = np.eye(4)
    affine[np.ix_([0, 1, 3], [0, 1, 3])] = image.affine
    return affine


def _header_geometry(image: Image, source: Image) -> tuple[np.ndarray, int, np.ndarray, int]:
    """(sform, code, qform, code): the source file's own header when it still describes this grid."""
    affine = _embedded_affine(image)
    nifti = source.meta.get("nifti") if source.meta.get("format") == "nifti" else None
    if nifti and image.spatial_dims == 3:
        stored = [
            (nifti.get("sform"), nifti.get("sform_code", 0)),
            (nifti.get("qform"), nifti.get("qform_code", 0)),
        ]
        coded = [np.asarray(m) for m, code in stored if m is not None and code > 0]
        if coded and all(np.allclose(m, affine, atol=1e-4) for m in coded):
            sform = np.asarray(stored[0][0]) if stored[0][0] is not None else affine
            qform = np.asarray(stored[1][0]) if stored[1][0] is not None else affine
            return sform, int(stored[0][1]), qform, int(stored[1][1])
    return affine, 1, affine, 1


def _write_nifti(image: Image, array: np.ndarray, target: Path, source: Image) -> None:
    import nibabel as nib

    data = array[0] if image.num_channels == 1 else np.moveaxis(array, 0, -1)
    if image.spatial_dims == 2 and image.num_channels > 1:
        data = data[:, :, None, :]  # NIfTI keeps channels on axis 3
    sform, sform_code, qform, qform_code = _header_geometry(image, source)
    nifti = nib.Nifti1Image(data, sform)
    header = nifti.header
    header.set_data_dtype(data.dtype)
    nifti.set_sform(sform, code=sform_code)
    nifti.set_qform(qform, code=qform_code)
    header.set_xyzt_units("mm", "sec")
    header.set_slope_inter(1.0, 0.0)
    if image.kind == "label":
        header.set_intent(_NIFTI_LABEL_INTENT)
    nib.save(nifti, str(target))


def _write_itk(image: Image, array: np.ndarray, target: Path, source: Image) -> None:
    import SimpleITK as sitk

    sitk.WriteImage(image.with_array(array).to_sitk(), str(target), useCompression=True)


_WRITERS: dict[str, Callable[[Image, np.ndarray, Path, Image], None]] = {
    ".nii": _write_nifti,
    ".nii.gz": _write_nifti,
    ".mha": _write_itk,
    ".mhd": _write_itk,
    ".nrrd": _write_itk,
}


def check_output_file(path: Path, *, overwrite: bool, inputs: tuple[str | Path, ...] = ()) -> None:
    """Refuse, before any work, an output with an unwritable extension, one that exists (unless
    ``overwrite``), or one that is an input file (the command line's rules for one output file)."""
    if not path.name.lower().endswith(WRITABLE_SUFFIXES):
        raise ImageWriteError(
            f"{path}: unsupported output extension; use one of {', '.join(WRITABLE_SUFFIXES)}"
        )
    if path.exists() and not overwrite:
        raise ImageWriteError(f"{path}: already exists; pass --overwrite to replace it")
    for source in map(Path, inputs):
        if path.exists() and source.exists() and path.resolve() == source.resolve():
            raise ImageWriteError(f"{path}: is the input itself; choose another output file")


def write_image(image: Image, path: str | Path, *, reference: Image | None = None, dtype: Any = None) -> Path:
    """Write ``image`` to ``path`` (format from the extension: .nii, .nii.gz, .mha, .mhd, .nrrd), atomically.

    Args:
        image: what to write; label images are stored as uint8 (uint16 when a value exceeds 255).
        path: the output file; its folder is created if missing.
        reference: the image this output belongs to (e.g. the input of a prediction). ``image``
            must lie on its grid; a NIfTI reference's own sform/qform (and codes) are reused so the
            header matches the input exactly.
        dtype: voxel type to store (values must fit); default: the image's own (labels narrowed).

    Returns:
        ``path``. Raises :class:`ImageWriteError` naming the path; nothing is written then.
    """
    path = Path(path)
    writer = _WRITERS.get(format_ending(path))
    if writer is None:
        raise ImageWriteError(
            f"{path}: unsupported output extension {format_ending(path) or '(none)'}; use one of {', '.join(WRITABLE_SUFFIXES)}"
        )
    if reference is not None:
        difference = image.grid_difference(reference)
        if difference is not None:
            raise ImageWriteError(
                f"{path}: the image is not on the reference grid ({difference}); resample it with "
                "medswin.io.resample_to_reference first"
            )
    array = _prepared_array(image, dtype, path)
    with atomic_output(path) as temporary:
        try:
            writer(image, array, temporary, reference if reference is not None else image)
        except (RuntimeError, ValueError, TypeError) as error:
            if system_cause(error) is not None:
                raise ImageWriteError(write_failure(path, error)) from error
            first = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
            raise ImageWriteError(
                f"{path}: could not write the image ({first or type(error).__name__}); nothing was written"
            ) from error
    log.debug("wrote %s", path)
    return path


def write_labels(labels: Image | np.ndarray, path: str | Path, *, reference: Image | None = None) -> Path:
    """Write a label map (uint8/uint16). ``labels`` may be a bare array ``([1,] X, Y, Z)`` on ``reference``'s grid."""
    if not isinstance(labels, Image):
        if reference is None:
            raise ImageWriteError(f"{path}: a bare label array needs a reference image for its geometry")
        try:
            labels = reference.with_array(np.asarray(labels), kind="label")
        except Exception as error:
            raise ImageWriteError(f"{path}: {error}") from error
    elif labels.kind != "label":
        labels = labels.with_array(labels.array, kind="label")
    return write_image(labels, path, reference=reference)
