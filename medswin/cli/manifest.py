"""``medswin manifest FOLDER -o datalist.json``: build a datalist from a dataset folder, or check one.

Thin shell over :func:`medswin.data.builder.build_manifest` and
:func:`medswin.data.manifest.load_datalist`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run"]

DESCRIPTION = """\
Build a datalist (MONAI / Decathlon JSON) from a dataset folder, with cross-validation folds:

  medswin manifest Task09_Spleen -o spleen_datalist.json --folds 5

Folder layouts: imagesTr/ + labelsTr/ (+ imagesTs/) as nnU-Net and the Medical Segmentation
Decathlon store them (nnU-Net channel files <case>_0000.nii.gz ... are grouped into one case);
images/ + labels/ with matching names; or one sub-folder per case holding channel files and a
*_seg / *-seg label (BraTS). A dataset.json in the folder adds its name, channels and labels.
Every case is read to check that its channels and label share one grid (--no-geometry-check
skips that). Paths in the datalist are relative to FOLDER.

Check an existing datalist (schema, files present, and with --geometry the grids):

  medswin manifest --check datalist.json --data-root /data/BTCV
"""


def add_parser(subparsers: Any) -> None:
    from medswin.data.builder import LAYOUTS

    parser = subparsers.add_parser(
        "manifest",
        help="build a datalist JSON (cases, folds) from a dataset folder, or check one",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("folder", nargs="?", type=Path, help="dataset folder to scan")
    parser.add_argument("-o", "--output", type=Path, metavar="FILE", help="datalist JSON to write")
    parser.add_argument(
        "--folds", type=int, default=5, help="cross-validation folds (0 or 1: none; default 5)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the fold assignment (default 0)")
    parser.add_argument("--layout", choices=LAYOUTS, default="auto", help="folder layout (default: detect)")
    parser.add_argument(
        "--channels",
        nargs="+",
        metavar="NAME",
        help="channel names in model order (case folders: the file name endings, e.g. t2f t1c t1n t2w)",
    )
    parser.add_argument("--no-geometry-check", action="store_true", help="do not read the images")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.add_argument("--check", type=Path, metavar="DATALIST", help="check an existing datalist instead")
    parser.add_argument(
        "--data-root", type=Path, metavar="DIR", help="with --check: folder the paths refer to"
    )
    parser.add_argument("--geometry", action="store_true", help="with --check: also read every case's grids")
    parser.set_defaults(run=run)


def _check(args: argparse.Namespace) -> int:
    from medswin.data.manifest import check_case_geometry, load_datalist

    datalist = load_datalist(args.check, args.data_root, check_files=True)
    cases = [*datalist.training, *datalist.validation, *datalist.test]
    if args.geometry:
        expected = len(datalist.info.channels) if datalist.info is not None else None
        for entry in cases:
            channels, _ = check_case_geometry(entry, expected)
            expected = channels if expected is None else expected
    folds = f", folds {datalist.folds}" if datalist.folds else ""
    if not args.quiet:
        print(
            f"{args.check}: {len(datalist.training)} training, {len(datalist.validation)} validation, "
            f"{len(datalist.test)} test case(s){folds}; all files found under {datalist.root}"
            + ("; grids consistent" if args.geometry else "")
        )
    return 0


def run(args: argparse.Namespace) -> int:
    from medswin.data.builder import build_manifest
    from medswin.data.manifest import write_json
    from medswin.errors import ManifestError

    if args.check is not None:
        if args.folder is not None or args.output is not None:
            raise ManifestError("--check takes a datalist; do not also give FOLDER or -o")
        return _check(args)
    if args.folder is None or args.output is None:
        raise ManifestError("give a dataset FOLDER and -o datalist.json (or --check DATALIST)")
    if args.output.exists() and not args.overwrite:
        raise ManifestError(f"{args.output}: already exists; pass --overwrite to replace it")
    document = build_manifest(
        args.folder,
        folds=args.folds,
        seed=args.seed,
        layout=args.layout,
        channels=args.channels,
        check_geometry=not args.no_geometry_check,
    )
    write_json(args.output, document)
    if not args.quiet:
        folds = f" in {document['numFolds']} folds" if "numFolds" in document else ""
        print(
            f"wrote {args.output}: {len(document['training'])} training case(s){folds}, "
            f"{len(document.get('test', []))} test case(s)"
        )
    return 0
