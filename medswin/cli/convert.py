"""``medswin convert INPUT -o OUTPUT``: any readable image to NIfTI, MHA or NRRD, geometry kept exactly."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="convert an image, DICOM folder or zip to NIfTI/MHA/NRRD (format from the output extension)",
        description=(
            "Read any supported input (NIfTI, NRRD, MHA, DICOM file/folder/zip, PNG/TIFF) and write it as "
            ".nii.gz, .nii, .mha, .mhd or .nrrd with the same voxels and geometry. The output is written "
            "atomically and an existing file is kept unless --overwrite is given."
        ),
    )
    parser.add_argument("input", help="image file, DICOM folder or .zip of DICOM files")
    parser.add_argument(
        "-o", "--output", required=True, help="output file (.nii.gz, .nii, .mha, .mhd, .nrrd)"
    )
    parser.add_argument("--series", metavar="UID", help="SeriesInstanceUID to convert (default: the largest)")
    parser.add_argument(
        "--allow-gaps",
        action="store_true",
        help="accept DICOM series with missing slices or uneven steps (interpolated onto a regular grid)",
    )
    parser.add_argument(
        "--labels",
        action="store_true",
        help="the input is a label map: integer voxels, stored as uint8/uint16",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from medswin.io import read_image, write_image
    from medswin.io.writers import check_output_file

    output = Path(args.output)
    check_output_file(output, overwrite=args.overwrite, inputs=(args.input,))
    image = read_image(
        args.input,
        series_uid=args.series,
        kind="label" if args.labels else "intensity",
        allow_gaps=args.allow_gaps,
    )
    write_image(image, output)
    spacing = " × ".join(f"{s:g}" for s in image.spacing)
    shape = " × ".join(str(n) for n in image.shape)
    print(f"wrote {output} ({shape} voxels, {spacing} mm, {image.orientation}, {image.array.dtype})")
    return 0
