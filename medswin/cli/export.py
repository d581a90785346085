"""``medswin export MODEL --format onnx|openvino|torchscript -o DIR``: a network for deployment.

A thin shell over :func:`medswin.inference.export.write_export`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run"]

DESCRIPTION = """\
Write MODEL's network for another program: ONNX (torch's dynamo exporter, needs
pip install 'medswin[onnx]'), OpenVINO IR (.xml + .bin, fp32 weights; 'medswin[openvino]') or
TorchScript (.pt), plus <model>.card.json: the model card (preprocessing, labels, roi) with an
"export" block naming the file, its input and output tensors and shapes, the versions that made
it and the SHA-256 of the weights. Shapes are static: BATCH windows of the card's roi_size
(Swin-X2S: an AP and a lateral view in, two logit volumes out; sum them, then argmax).
Exporting a Swin UNETR takes a minute or more. Files are written atomically.
"""


def add_parser(subparsers: Any) -> None:
    from medswin.inference.runtime import EXPORT_FORMATS

    parser = subparsers.add_parser(
        "export",
        help="write a model's network as ONNX, OpenVINO IR or TorchScript, with its card",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "model", metavar="MODEL", help="medswin checkpoint (.safetensors), shipped or published model name"
    )
    parser.add_argument("--format", required=True, choices=EXPORT_FORMATS, help="what to write")
    parser.add_argument("-o", "--output", required=True, type=Path, metavar="DIR", help="output folder")
    parser.add_argument(
        "--batch-size", type=int, default=1, metavar="N", help="windows per network call (default: 1)"
    )
    parser.add_argument("--opset", type=int, default=None, help="ONNX opset (default: medswin's, 18)")
    parser.add_argument("--overwrite", action="store_true", help="replace files already in DIR")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from medswin.errors import MedSwinError
    from medswin.inference.export import ONNX_OPSET, planned_files, write_export
    from medswin.inference.predictor import resolve_network

    if args.batch_size < 1:
        raise MedSwinError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.opset is not None and args.format != "onnx":
        raise MedSwinError(f"--opset applies to --format onnx only, not {args.format}")
    network, card = resolve_network(args.model, None, "cpu")
    if args.output.exists() and not args.output.is_dir():
        raise MedSwinError(f"{args.output}: is a file; -o names a folder")
    existing = [p for p in planned_files(card, args.format, args.output) if p.exists()]
    if existing and not args.overwrite:
        raise MedSwinError(
            f"{', '.join(str(p) for p in existing)}: already there; pass --overwrite to replace, or another -o"
        )
    exported, card_path = write_export(
        network, card, args.format, args.output, batch_size=args.batch_size, opset=args.opset or ONNX_OPSET
    )
    if not getattr(args, "quiet", False):
        shapes = ", ".join(f"{name} {'x'.join(map(str, s))}" for name, s in exported.inputs.items())
        print(f"wrote {exported.path} ({args.format}; {shapes}; {exported.seconds:.1f} s) and {card_path}")
    return 0
