"""DICOM-SEG output through highdicom: a label map written against the DICOM series it came from.

The source series is re-read from ``source.meta["source_files"]`` (headers only) so the SEG
references the exact SOP instances, frame of reference, patient and study of the input. Labels
are first brought onto the source grid (nearest neighbour, exact when the grid already matches)
and then cut into frames in the order the reader stacked the source slices, so frame ``k`` of
the label volume is written against source slice (or source frame) ``k``: the pixel-for-pixel
alignment viewers such as Weasis rely on. BINARY segmentation, uncompressed, one segment per
label value, numbered 1..n in label order.
"""

from __future__ import annotations

import io
import logging
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from medswin.errors import ImageReadError, ImageWriteError
from medswin.files import atomic_output
from medswin.io.anatomy import CodedTerm, find_structure, structure_colors
from medswin.io.dicom_discovery import SEGMENTATION_SOP_CLASS
from medswin.io.geometry import resample_to_reference
from medswin.io.image import Image, lps_to_ras

__all__ = ["write_dicom_seg", "read_dicom_seg", "is_dicom_seg", "source_datasets"]

log = logging.getLogger(__name__)

RGB = tuple[int, int, int]


def source_datasets(source: Image) -> list[Any]:
    """The headers (no pixel data) of the DICOM files ``source`` was read from, in reading order.

    Refused with :func:`medswin.io.outputs.dicom_source_problem`'s message for any other image.
    """
    import pydicom

    from medswin.io.outputs import dicom_source_problem

    files = source.meta.get("source_files")
    where = source.meta.get("path", "<in memory>")
    problem = dicom_source_problem(source)
    if problem is not None:
        raise ImageWriteError(problem)
    archive = source.meta.get("source_archive")
    try:
        if archive:
            with zipfile.ZipFile(archive) as bundle:
                return [
                    pydicom.dcmread(io.BytesIO(bundle.read(name)), stop_before_pixels=True) for name in files
                ]
        return [pydicom.dcmread(name, stop_before_pixels=True) for name in files]
    except (OSError, KeyError, zipfile.BadZipFile, pydicom.errors.InvalidDicomError) as error:
        raise ImageWriteError(
            f"{where}: cannot re-read the source DICOM files for the SEG references ({error}); "
            "they must still exist where they were read from"
        ) from error


def _frames_for(labels: np.ndarray, datasets: list[Any], source: Image, where: str) -> np.ndarray:
    """Label slices ``(frames, rows, columns)`` in the order of the source's frames."""
    slices = np.transpose(labels, (2, 1, 0))  # (X, Y, Z) -> (Z, rows, columns)
    frame_numbers = source.meta.get("source_frame_numbers")
    if frame_numbers is None:
        uids = [str(ds.SOPInstanceUID) for ds in datasets]
        expected = source.meta.get("source_sop_instance_uids")
        if expected is not None and list(expected) != uids:
            raise ImageWriteError(
                f"{where}: the source DICOM files changed since they were read; read them again"
            )
        if len(datasets) != slices.shape[0]:
            raise ImageWriteError(f"{where}: {len(datasets)} source files for {slices.shape[0]} slices")
        return slices
    if len(datasets) != 1:
        raise ImageWriteError(
            f"{where}: DICOM-SEG for a series of several multi-frame files is not supported"
        )
    total = int(datasets[0].get("NumberOfFrames", 1))
    frames = np.zeros((total, *slices.shape[1:]), dtype=slices.dtype)
    frames[np.asarray(frame_numbers) - 1] = slices
    return frames


def _code(term: CodedTerm) -> Any:
    from pydicom.sr.coding import Code

    return Code(term.value, term.scheme, term.meaning)


def _segment_numbers(values: np.ndarray, label_names: Mapping[int, str], where: str) -> dict[int, int]:
    named = sorted(int(v) for v in label_names if int(v) != 0)
    missing = sorted({int(v) for v in np.unique(values)} - set(named) - {0})
    if missing:
        raise ImageWriteError(
            f"{where}: label value(s) {missing} have no name in label_names; name every label"
        )
    if not named:
        raise ImageWriteError(f"{where}: label_names names no foreground label; nothing to segment")
    return {value: number for number, value in enumerate(named, start=1)}


def _fill_slice_thickness(datasets: list[Any], source: Image) -> None:
    """Give the in-memory source headers the slice spacing medswin measured when SliceThickness is
    missing or empty (type 2 in CT, left out by some exporters): highdicom copies it into the SEG's
    pixel measures and fails without it. The files are not touched."""
    first = datasets[0]
    if "PerFrameFunctionalGroupsSequence" in first:
        return
    row, column = np.asarray(first.ImageOrientationPatient, dtype=float).reshape(2, 3)
    slice_axis = int(np.argmax(np.abs(source.direction.T @ np.cross(row, column))))
    for ds in datasets:
        if ds.get("SliceThickness") in (None, ""):
            ds.SliceThickness = f"{float(source.spacing[slice_axis]):.6g}"


def write_dicom_seg(
    labels: Image,
    source: Image,
    path: str | Path,
    label_names: Mapping[int, str],
    colors: Mapping[int, RGB] | None = None,
    *,
    algorithm_name: str = "medswin",
    algorithm_version: str | None = None,
    property_codes: Mapping[int, tuple[Any, Any]] | None = None,
    series_description: str = "medswin segmentation",
    series_number: int = 901,
    manufacturer: str = "medswin",
    content_label: str = "SEGMENTATION",
    content_description: str | None = None,
    deidentify_key: bytes | None = None,
) -> Path:
    """Write ``labels`` as a BINARY DICOM-SEG referencing the DICOM series ``source`` was read from.

    Args:
        labels: label map ``(1, X, Y, Z)``; resampled (nearest) onto ``source``'s grid when it is not on it.
        source: the image read from the DICOM series (its ``meta["source_files"]`` are re-read).
        path: output ``.dcm`` file (written atomically).
        label_names: label value -> segment label; every non-zero value in ``labels`` needs a name.
        colors: label value -> display colour (R, G, B in 0..255), stored as CIELab; used for
            names :mod:`medswin.io.anatomy` does not know (it gives the others, so viewers show the
            colours napari shows).
        algorithm_name, algorithm_version: the AlgorithmIdentificationSequence (family: AI).
        property_codes: label value -> (category, type) codes (pydicom ``Code``), overriding the
            table; default: :func:`medswin.io.anatomy.find_structure` of the label's name (SNOMED CT,
            with a Right/Left modifier for sided structures), else category SCT "Tissue" and type
            SCT "Organ".
        series_description, series_number, manufacturer, content_label: the new series' attributes.
        content_description: ContentDescription, e.g. the model's intended use and the quality verdict
            (a PACS viewer shows it beside the series); cut to the 64 characters DICOM allows.
        deidentify_key: de-identify the SEG (:mod:`medswin.io.deidentify`) with pseudonyms under this key.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    from medswin import __version__

    path = Path(path)
    where = str(path)
    if source.spatial_dims != 3 or labels.spatial_dims != 3:
        raise ImageWriteError(f"{where}: DICOM-SEG is written for 3D series only")
    if labels.num_channels != 1:
        raise ImageWriteError(f"{where}: labels must have one channel, got {labels.num_channels}")
    datasets = source_datasets(source)  # refuses a source that is not DICOM (dicom_source_problem)
    _fill_slice_thickness(datasets, source)
    if labels.kind != "label":
        labels = labels.with_array(labels.array, kind="label")
    if not labels.same_grid(source, atol_mm=1e-4):
        log.info(
            "%s: resampling labels onto the source series grid (%s)", where, labels.grid_difference(source)
        )
        labels = resample_to_reference(labels, source, interpolation="nearest")
    values = np.asarray(labels.array[0])
    numbers = _segment_numbers(values, label_names, where)
    lookup = np.zeros(int(max(numbers.keys() | {int(values.max(initial=0))})) + 1, dtype=np.uint16)
    for value, number in numbers.items():
        lookup[value] = number
    if values.size and values.min() < 0:
        raise ImageWriteError(f"{where}: negative label values cannot be segments")
    segments = lookup[values.astype(np.int64)]
    segments = segments.astype(np.uint8 if len(numbers) < 256 else np.uint16)
    pixel_array = _frames_for(segments, datasets, source, where)

    algorithm = hd.AlgorithmIdentificationSequence(
        name=algorithm_name, family=codes.DCM.ArtificialIntelligence, version=algorithm_version or __version__
    )
    descriptions = []
    shown_colors = structure_colors(label_names, colors)
    for value, number in numbers.items():
        structure = find_structure(str(label_names[value]))
        modifier = None
        if value in (property_codes or {}):
            category, kind = (property_codes or {})[value]
        elif structure is not None:
            category, kind = _code(structure.category), _code(structure.type)
            modifier = _code(structure.laterality) if structure.laterality is not None else None
        else:
            category, kind = codes.SCT.Tissue, codes.SCT.Organ
        color = shown_colors.get(value)
        description = hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=str(label_names[value])[:64],
            segmented_property_category=category,
            segmented_property_type=kind,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
            display_color=hd.color.CIELabColor.from_rgb(*color) if color is not None else None,
        )
        if modifier is not None:  # laterality qualifies the type (as 3D Slicer and dcmqi write it)
            description.SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence = [
                hd.sr.CodedConcept(modifier.value, modifier.scheme_designator, modifier.meaning)
            ]
        descriptions.append(description)
    try:
        seg = hd.seg.Segmentation(
            source_images=datasets,
            pixel_array=pixel_array,
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=descriptions,
            series_instance_uid=generate_uid(),
            series_number=series_number,
            sop_instance_uid=generate_uid(),
            instance_number=1,
            manufacturer=manufacturer,
            manufacturer_model_name="medswin",
            software_versions=__version__,
            device_serial_number="0",
            content_label=content_label,
            content_description=content_description[:64] if content_description else None,
            series_description=series_description[:64],
        )
    except (ValueError, TypeError, AttributeError) as error:
        raise ImageWriteError(f"{where}: highdicom refused the segmentation ({error})") from error
    if deidentify_key is not None:
        from medswin.io.deidentify import deidentify_dataset

        deidentify_dataset(seg, deidentify_key)
    with atomic_output(path) as temporary:
        seg.save_as(temporary)
    log.info("wrote DICOM-SEG %s with %d segment(s)", path, len(descriptions))
    return path


def is_dicom_seg(path: str | Path) -> bool:
    """True when ``path`` is a DICOM Segmentation Storage object (header only)."""
    import pydicom

    try:
        ds = pydicom.dcmread(str(path), stop_before_pixels=True, specific_tags=["SOPClassUID"])
    except (OSError, pydicom.errors.InvalidDicomError, ValueError, TypeError):
        return False
    return str(ds.get("SOPClassUID", "")) == SEGMENTATION_SOP_CLASS


def read_dicom_seg(path: str | Path) -> tuple[Image, dict[int, str]]:
    """A DICOM-SEG as a label image on the grid of the frames it stores, and its segment names.

    The frames are the source series' own pixel grid (a SEG is drawn on its source slices), so the
    labels sit voxel for voxel on the source wherever the SEG has frames; slices between stored
    frames are filled with 0, slices beyond them are not included. Label values are the segment
    numbers (overlapping segments: the higher number wins).

    Returns:
        ``(labels (1, columns, rows, slices) with LPS geometry, {segment number: SegmentLabel})``.
    """
    import highdicom as hd

    path = Path(path)
    try:
        seg = hd.seg.segread(str(path))
        volume = seg.get_volume(combine_segments=True, skip_overlap_checks=True)
    except (OSError, ValueError, RuntimeError, KeyError, AttributeError) as error:
        raise ImageReadError(f"{path}: cannot read this DICOM-SEG ({str(error)[:300]})") from error
    names = {int(s.SegmentNumber): str(s.SegmentLabel) for s in seg.SegmentSequence}
    array = np.asarray(volume.array)
    if array.ndim != 3:
        raise ImageReadError(
            f"{path}: DICOM-SEG volume of shape {array.shape}; medswin reads one 3D label map"
        )
    # highdicom: array (slice, row, column), affine maps those indices to LPS mm; medswin: (X, Y, Z)
    affine = np.asarray(volume.affine, dtype=np.float64)
    permute = np.eye(4)[[2, 1, 0, 3]].T  # (column, row, slice) -> (slice, row, column) indices
    lps = affine @ permute
    labels = np.transpose(array, (2, 1, 0))
    labels = labels.astype(np.uint8 if labels.max(initial=0) <= 255 else np.uint16)
    meta = {
        "path": str(path),
        "format": "dicom-seg",
        "modality": "SEG",
        "dicom": {
            "SeriesDescription": str(seg.get("SeriesDescription", "")),
            "SeriesInstanceUID": str(seg.SeriesInstanceUID),
            "FrameOfReferenceUID": str(seg.get("FrameOfReferenceUID", "")),
        },
    }
    return Image.from_affine(labels[None], lps_to_ras(3) @ lps, "label", meta), names
