"""``medswin import-checkpoint``: convert an official checkpoint into a medswin .safetensors file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    from medswin.weights.legacy import LEGACY_CHOICES

    parser = subparsers.add_parser(
        "import-checkpoint",
        help="convert an official checkpoint (.pt/.pth) into a medswin .safetensors with its model card",
        description=(
            "Read an official checkpoint without unpickling code, map its keys onto the model a card "
            "describes, print the load report and write a medswin checkpoint (weights + card)."
        ),
    )
    parser.add_argument("source", type=Path, help="official checkpoint (.pt, .pth, .bin or .safetensors)")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--preset", help="preset card id, e.g. swin_unetr_btcv (see 'medswin models')")
    which.add_argument("--card", type=Path, help="model card JSON describing the model")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output .safetensors file")
    parser.add_argument("--key-map", help="key map name (default: the card architecture's official map)")
    parser.add_argument(
        "--partial",
        action="store_true",
        help="accept missing/unexpected keys (pretraining weights that fill only part of the model)",
    )
    parser.add_argument(
        "--legacy-merging",
        choices=LEGACY_CHOICES,
        default="auto",
        help="SwinUNETR only: yes = trained on MONAI <= 1.4 (pre-1.5 patch merging, every published file), "
        "no = trained on MONAI >= 1.5; auto (default) decides from what the file tells (a known published "
        "checksum, a stored MONAI version) and otherwise stops and asks",
    )
    parser.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from medswin.errors import CheckpointError
    from medswin.models import import_checkpoint, load_card, preset_card, save_checkpoint
    from medswin.weights.download import file_checksums
    from medswin.weights.legacy import check_legacy_choice, decide_legacy_merging, with_legacy_merging

    output: Path = args.output
    if output.suffix != ".safetensors":
        raise CheckpointError(f"{output}: the output must be a .safetensors file")
    if output.exists() and not args.force:
        raise CheckpointError(f"{output}: already exists; pass --force to overwrite it")
    if not args.source.is_file():
        raise CheckpointError(f"{args.source}: no such checkpoint file")
    card = preset_card(args.preset) if args.preset else load_card(args.card)
    check_legacy_choice(args.legacy_merging, card)
    model, report = import_checkpoint(args.source, card, key_map=args.key_map, partial=args.partial)
    print(report.summary())
    # the merging order changes no key or shape, so it is decided after the load report
    sha256, md5 = file_checksums(args.source)
    flag, why = decide_legacy_merging(args.legacy_merging, card, args.source, checksums=(sha256, md5))
    provenance = {
        **card.provenance,
        "imported_from": f"{args.source.name} sha256 {sha256} (key map {report.key_map}, "
        f"{len(report.loaded)} loaded, {len(report.missing)} missing, {len(report.unexpected)} unexpected)",
    }
    if flag is not None:
        print(f"legacy_merging {str(flag).lower()}: {why}")
    save_checkpoint(model, with_legacy_merging(card.replace(provenance=provenance), flag, why), output)
    print(f"wrote {output} (model card {card.id})")
    return 0
