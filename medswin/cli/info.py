"""``medswin info INPUT``: what an image file, DICOM folder or zip holds (series, grid, values)."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["add_parser", "run", "describe"]


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "info",
        help="show the series, grid (shape, spacing, origin, direction) and value range of an image",
        description=(
            "Describe an image file (NIfTI, NRRD, MHA, DICOM, PNG/TIFF), a DICOM folder or a zip: for DICOM "
            "every series found, then the grid and values of the one medswin would read."
        ),
    )
    parser.add_argument("input", help="image file, DICOM folder or .zip of DICOM files")
    parser.add_argument(
        "--series", metavar="UID", help="SeriesInstanceUID to describe (default: the largest)"
    )
    parser.add_argument("--allow-gaps", action="store_true", help="accept DICOM series with missing slices")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.set_defaults(run=run)


def describe(image: Any) -> dict[str, Any]:
    """Plain-data summary of an :class:`~medswin.io.Image` (what ``info`` prints)."""
    import numpy as np

    array = image.array
    finite = array[np.isfinite(array)] if np.issubdtype(array.dtype, np.floating) else array
    summary: dict[str, Any] = {
        "shape": list(image.shape),
        "channels": image.num_channels,
        "spacing_mm": [round(s, 6) for s in image.spacing],
        "origin_lps_mm": [round(o, 6) for o in image.origin],
        "direction_lps": np.round(image.direction, 6).tolist(),
        "orientation": image.orientation,
        "dtype": str(array.dtype),
        "min": float(finite.min()) if finite.size else None,
        "max": float(finite.max()) if finite.size else None,
        "mean": float(finite.mean()) if finite.size else None,
        "modality": image.meta.get("modality") or "",
        "voxel_volume_ml": image.voxel_volume_ml,
    }
    dicom = image.meta.get("dicom", {})
    for key in ("SeriesInstanceUID", "SeriesDescription", "Modality"):
        if key in dicom:
            summary[f"dicom_{key}"] = dicom[key]
    return summary


def _vector(values: list[float]) -> str:
    return " × ".join(f"{v:g}" for v in values)


def _print_series(series: list[Any], chosen: str | None) -> None:
    print(f"series:       {len(series)} found")
    for s in series:
        mark = "*" if s.uid == chosen else " "
        number = "-" if s.number is None else s.number
        print(
            f"  {mark} #{number:<4} {s.modality:<3} {s.num_frames:>5} frames  {_vector(list(s.shape)):<16} "
            f"{s.description!r}  {s.uid}"
        )


def run(args: argparse.Namespace) -> int:
    from medswin.io import list_series, read_image
    from medswin.io.readers import detect_format

    fmt = detect_format(args.input)
    series = list_series(args.input)
    if not args.json:
        # listed before reading, so a series that cannot be read still shows what else is there
        print(f"input:        {args.input}  ({fmt})")
        if series:
            _print_series(series, args.series or series[0].uid)
    image = read_image(args.input, series_uid=args.series, allow_gaps=args.allow_gaps)
    summary = describe(image)
    if args.json:
        chosen = image.meta.get("dicom", {}).get("SeriesInstanceUID")
        document = {
            "input": str(args.input),
            "format": fmt,
            "series": [
                {
                    "uid": s.uid,
                    "number": s.number,
                    "description": s.description,
                    "modality": s.modality,
                    "frames": s.num_frames,
                    "shape": list(s.shape),
                    "selected": s.uid == chosen,
                }
                for s in series
            ],
            "image": summary,
        }
        print(json.dumps(document, indent=2))
        return 0
    print(f"shape:        {_vector(summary['shape'])} voxels, {summary['channels']} channel(s)")
    print(f"spacing:      {_vector(summary['spacing_mm'])} mm")
    print(f"origin:       ({', '.join(f'{v:.4f}' for v in summary['origin_lps_mm'])}) mm, LPS")
    rows = ["[" + ", ".join(f"{v: .6f}" for v in row) + "]" for row in summary["direction_lps"]]
    print(f"direction:    {rows[0]}")
    for row in rows[1:]:
        print(f"              {row}")
    print(f"orientation:  {summary['orientation']}")
    print(f"dtype:        {summary['dtype']}")
    if summary["min"] is not None:
        print(f"values:       {summary['min']:g} .. {summary['max']:g} (mean {summary['mean']:.4g})")
    if summary["modality"]:
        print(f"modality:     {summary['modality']}")
    return 0
