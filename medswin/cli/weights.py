"""``medswin weights list|pull|path|import``: published models by name, cached for offline use."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run_list", "run_pull", "run_path", "run_import"]

DESCRIPTION = """\
Published Swin-family weights by name. 'pull' downloads a file once (resuming a broken transfer),
checks it against the published checksum (or, where the source publishes none, the SHA-256
recorded at the first download that converted), converts it into medswin's own checkpoint with its
model card and keeps it in the cache; 'medswin predict -m NAME' then runs it, pulling it first if
needed.

Environment: MEDSWIN_HOME (cache folder; default the platform's cache, e.g. ~/.cache/medswin),
MEDSWIN_OFFLINE=1 (never use the network), MEDSWIN_MIRROR=BASE_URL (fetch every file as
BASE_URL/<published file name> from an internal mirror), HTTPS_PROXY/HTTP_PROXY/NO_PROXY,
MEDSWIN_WEIGHTS_REGISTRY (extra registry JSON files whose entries replace shipped ones),
MEDSWIN_CONNECT_TIMEOUT / MEDSWIN_READ_TIMEOUT (seconds; defaults 30 / 60), MEDSWIN_DOWNLOAD_ATTEMPTS
(tries per URL, default 4), MEDSWIN_RETRY_BACKOFF (first pause, seconds, default 2),
MEDSWIN_WEIGHTS_MAX_MB (largest file accepted, default 2048).

A refused file (bad checksum, unsafe or wrong content, zip bomb) leaves nothing behind; the error
says what to run once the genuine file is available.
"""


def add_parser(subparsers: Any) -> None:
    from medswin.weights.legacy import LEGACY_CHOICES

    parser = subparsers.add_parser(
        "weights",
        help="published models by name: list, pull (download + verify + convert), path, import",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="weights_command", metavar="ACTION", required=True)
    listing = commands.add_parser("list", help="every known published model and whether it is cached")
    shape = listing.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="machine-readable output")
    shape.add_argument("--markdown", action="store_true", help="a Markdown table (as in the README)")
    listing.set_defaults(run=run_list)

    pull = commands.add_parser("pull", help="download, verify, convert and cache a model; prints its path")
    pull.add_argument("names", nargs="+", metavar="NAME", help="published model name(s)")
    pull.add_argument("--force", action="store_true", help="download and convert again even if cached")
    pull.set_defaults(run=run_pull)

    path = commands.add_parser("path", help="where a cached model's converted checkpoint lives")
    path.add_argument("name", metavar="NAME")
    path.set_defaults(run=run_path)

    imp = commands.add_parser(
        "import",
        help="put a file fetched elsewhere (or a MONAI bundle) into the cache, for air-gapped sites",
        description=(
            "Convert FILE into the cache under NAME, exactly as a pull would. A published model's file "
            "must match its checksum. NAME may also be a preset card id (medswin models), e.g. "
            "swin_x2s_base_ctspine1k. A MONAI bundle (.zip or folder) needs no card: its "
            "configs/metadata.json and configs/inference.json describe the model."
        ),
    )
    imp.add_argument("source", type=Path, metavar="FILE", help="checkpoint (.pt/.pth/.zip) or MONAI bundle")
    imp.add_argument(
        "--as", dest="name", metavar="NAME", help="cache name (a bundle defaults to its folder name)"
    )
    imp.add_argument(
        "--legacy-merging",
        choices=LEGACY_CHOICES,
        default="auto",
        help="SwinUNETR only: yes = trained on MONAI <= 1.4 (pre-1.5 patch merging), no = MONAI >= 1.5; "
        "auto (default) decides from the file or stops and asks",
    )
    imp.add_argument("--force", action="store_true", help="replace a cached model of that name")
    imp.set_defaults(run=run_import)


def _megabytes(size: int | None) -> str:
    return "?" if size is None else f"{size / 1e6:,.0f} MB"


def _rows() -> list[dict[str, Any]]:
    from medswin.weights import cached_weights, list_weights

    rows = []
    for entry in list_weights():
        card = entry.model_card()
        cached = cached_weights(entry.name)
        published = entry.file.size
        rows.append(
            {
                "name": entry.name,
                "kind": entry.kind,
                "task": entry.task,
                "labels": {str(k): v for k, v in card.labels.items()},
                "outputs": card.num_classes,
                "source": entry.source,
                "url": entry.file.urls[0],
                "license": entry.license,
                "size_bytes": published,
                "size": _megabytes(published) if published is not None else "not published",
                "cached_size": _megabytes(cached.stat().st_size) if cached else None,
                "checksum": ":".join(
                    entry.file.published_checksum or ("none published", "sha256 on first pull")
                ),
                "legacy_merging": entry.legacy_merging,
                "score": entry.score["value"],
                "score_text": entry.score["text"],
                "cached": str(cached) if cached else None,
            }
        )
    return rows


def _source_text(row: dict[str, Any]) -> str:
    """Where the file comes from, short: the host and owner of its first URL."""
    from urllib.parse import urlsplit

    parts = urlsplit(row["url"])
    owner = parts.path.strip("/").split("/")[0]
    return f"{parts.hostname}/{owner}" if parts.hostname == "github.com" else str(parts.hostname)


def _labels_text(row: dict[str, Any]) -> str:
    if row["kind"] == "pretraining":
        return "none (encoder only)"
    names = [v for k, v in sorted(row["labels"].items(), key=lambda kv: int(kv[0])) if k != "0"]
    return f"{len(names)}: {', '.join(names[:3])}" + (", ..." if len(names) > 3 else "")


def run_list(args: argparse.Namespace) -> int:
    from medswin.cli.models import _table
    from medswin.weights import weights_home

    rows = _rows()
    if args.json:
        print(json.dumps({"cache": str(weights_home()), "models": rows}, indent=2))
        return 0
    score = [f"{r['score']:.4f}" if r["score"] is not None else "-" for r in rows]
    if args.markdown:
        print("| name | task | labels | size | licence | source | published score |")
        print("|---|---|---|---|---|---|---|")
        for row, value in zip(rows, score):
            print(
                f"| `{row['name']}` | {row['task']} | {_labels_text(row)} | {row['size']} | {row['license']} | "
                f"{row['source']} | {value}: {row['score_text']} |"
            )
        return 0
    table = [
        [
            r["name"],
            f"yes ({r['cached_size']})" if r["cached"] else "no",
            r["size"],
            s,
            r["license"],
            _source_text(r),
            _labels_text(r),
            r["task"],
        ]
        for r, s in zip(rows, score)
    ]
    print(f"Published models (cache: {weights_home()}; 'medswin weights pull NAME', or -m NAME):")
    print(_table(table, ["name", "cached", "size", "score", "licence", "source", "labels", "task"]))
    print(
        "\nscore: the published figure for each file (medswin weights list --json gives where it was measured)"
    )
    return 0


def run_pull(args: argparse.Namespace) -> int:
    from medswin.weights import get_weights, pull
    from medswin.weights.download import console_progress

    for name in args.names:
        entry = get_weights(name)
        quiet = bool(getattr(args, "quiet", False))
        with console_progress(f"{name}: {entry.file.name}", enabled=not quiet) as progress:
            path = pull(name, progress=progress, force=args.force)
        print(f"{name}: {path}")
    return 0


def run_path(args: argparse.Namespace) -> int:
    from medswin.errors import WeightsError
    from medswin.weights import cached_weights, converted_path

    path = cached_weights(args.name)
    if path is None:
        raise WeightsError(
            f"{args.name} is not in the cache (it would be {converted_path(args.name)}); "
            f"run 'medswin weights pull {args.name}' or 'medswin weights import FILE --as {args.name}'"
        )
    print(path)
    return 0


def run_import(args: argparse.Namespace) -> int:
    from medswin.errors import WeightsError
    from medswin.weights import import_file
    from medswin.weights.bundle import import_bundle, is_bundle

    source: Path = args.source
    if not source.exists():
        raise WeightsError(f"{source}: no such file or folder")
    if is_bundle(source):
        path = import_bundle(source, args.name, legacy_merging=args.legacy_merging, force=args.force)
    else:
        if not args.name:
            raise WeightsError(f"{source}: name the model it holds with --as NAME (medswin weights list)")
        path = import_file(source, args.name, legacy_merging=args.legacy_merging, force=args.force)
    print(f"{path.stem}: {path}")
    return 0
