"""``medswin`` console script: one sub-command per module in :mod:`medswin.cli`.

Each command module exposes ``add_parser(subparsers)`` and ``run(args) -> int``; heavy imports
(torch, MONAI) live inside ``run`` so that ``medswin --help`` is instant.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import sys
from collections.abc import Callable
from typing import Any

from medswin.errors import MedSwinError

__all__ = ["main", "build_parser"]

log = logging.getLogger("medswin")

#: sub-command -> the module of :mod:`medswin.cli` that defines it, in the order ``--help`` lists them.
COMMANDS = {
    "predict": "predict",
    "listen": "listen",
    "evaluate": "evaluate",
    "report": "report",
    "info": "info",
    "convert": "convert",
    "models": "models",
    "card": "models",
    "import-checkpoint": "import_checkpoint",
    "weights": "weights",
    "train": "train",
    "manifest": "manifest",
    "submit": "submit",
    "x2s": "x2s",
    "export": "export",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The CLI's parser; with a known ``command``, only that sub-command's module is imported and
    built (``medswin info f.nii.gz`` starts without reading the other commands' options)."""
    from medswin import __version__

    parser = argparse.ArgumentParser(prog="medswin", description="Swin-family medical image segmentation.")
    parser.add_argument("--version", action="version", version=f"medswin {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    parser.add_argument(
        "--log-phi",
        action="store_true",
        help="let output and logs show patient names and ids found in DICOM headers (default: [PHI])",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = [COMMANDS[command]] if command in COMMANDS else COMMANDS.values()
    for name in dict.fromkeys(modules):
        try:
            module = importlib.import_module(f"medswin.cli.{name}")
        except ModuleNotFoundError as error:
            if error.name == f"medswin.cli.{name}":
                continue
            raise
        module.add_parser(subparsers)
    return parser


def _command(argv: list[str]) -> str | None:
    """The sub-command ``argv`` names: its first word that is not an option (the top-level options
    take no values); None when ``--help`` comes first, so every command is listed."""
    for word in argv:
        if word in ("-h", "--help"):
            return None
        if not word.startswith("-"):
            return word
    return None


def _configure_logging(verbose: int, quiet: bool, log_phi: bool = False) -> Callable[[], None]:
    """Set up the root handlers; unless ``log_phi``, mask patient identifiers in what they write.

    Returns a function that removes the mask again (``main`` calls it on return, so running the CLI
    in-process leaves no filter, and no remembered identifier, behind).
    """
    from medswin.io.phi import PHIFilter, forget_identifiers

    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if log_phi:
        return lambda: None
    forget_identifiers()  # mask what this run reads, not what an earlier in-process run read
    mask = PHIFilter()
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(mask)

    def remove() -> None:
        for handler in handlers:
            handler.removeFilter(mask)
        forget_identifiers()

    return remove


class _MaskedStream:
    """A text stream that writes through to ``stream`` with remembered patient identifiers masked."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        from medswin.io.phi import mask_phi

        self._stream.write(mask_phi(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:  # flush, isatty, fileno, encoding ... of the real stream
        return getattr(self._stream, name)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (0 ok, 1 some cases failed, 2 usage or setup error)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command(argv))
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    unmask = _configure_logging(args.verbose, args.quiet, args.log_phi)
    # One rule for everything medswin prints: stdout (tables, info) and stderr (failed cases,
    # errors) are masked like the log records, unless --log-phi.
    streams = contextlib.ExitStack()
    if not args.log_phi:
        streams.enter_context(contextlib.redirect_stdout(_MaskedStream(sys.stdout)))
        streams.enter_context(contextlib.redirect_stderr(_MaskedStream(sys.stderr)))
    with streams:
        try:
            return int(args.run(args) or 0)
        except MedSwinError as error:
            log.error("%s", error)
            print(f"medswin: error: {error}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("medswin: interrupted", file=sys.stderr)
            return 130
        finally:
            unmask()


if __name__ == "__main__":
    sys.exit(main())
