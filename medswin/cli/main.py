"""``medswin`` console script: one sub-command per module in :mod:`medswin.cli`.

Each command module exposes ``add_parser(subparsers)`` and ``run(args) -> int``; heavy imports
(torch, MONAI) live inside ``run`` so that ``medswin --help`` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from medswin.errors import MedSwinError

__all__ = ["main", "build_parser"]

log = logging.getLogger("medswin")

#: sub-command modules, in the order ``--help`` lists them.
COMMAND_MODULES = (
    "predict",
    "evaluate",
    "info",
    "convert",
    "models",
    "import_checkpoint",
    "train",
    "manifest",
    "submit",
    "x2s",
)


def build_parser() -> argparse.ArgumentParser:
    from medswin import __version__

    parser = argparse.ArgumentParser(prog="medswin", description="Swin-family medical image segmentation.")
    parser.add_argument("--version", action="version", version=f"medswin {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"medswin.cli.{name}")
        except ModuleNotFoundError as error:
            if error.name == f"medswin.cli.{name}":
                continue
            raise
        module.add_parser(subparsers)
    return parser


def _configure_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (0 ok, 1 some cases failed, 2 usage or setup error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    _configure_logging(args.verbose, args.quiet)
    try:
        return int(args.run(args) or 0)
    except MedSwinError as error:
        log.error("%s", error)
        print(f"medswin: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("medswin: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
