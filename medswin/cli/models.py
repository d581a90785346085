"""``medswin models`` (what can be run) and ``medswin card MODEL`` (one model card)."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["add_parser", "run", "run_card"]


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list architectures, preset cards (with parameter counts) and checkpoint key maps",
        description="List registered architectures, shipped model cards and checkpoint key maps.",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    parser.add_argument(
        "--no-params", action="store_true", help="skip parameter counts (they build each model)"
    )
    parser.set_defaults(run=run)

    card = subparsers.add_parser(
        "card",
        help="print a model card (preset id, shipped model, card .json or medswin checkpoint)",
        description="Print the model card of a preset id, a shipped model, a card file or a .safetensors checkpoint.",
    )
    card.add_argument(
        "model", help="preset id (e.g. swin_unetr_btcv), shipped model (demo), CARD.json or CKPT.safetensors"
    )
    card.add_argument(
        "--json", action="store_true", help="print the card as JSON (the form stored in checkpoints)"
    )
    card.set_defaults(run=run_card)


def _parameter_count(architecture: str, config: dict[str, Any]) -> int:
    """Parameters of the model, built on the meta device when the architecture allows it."""
    import torch

    from medswin.models import create_model

    try:
        with torch.device("meta"):
            net = create_model(architecture, **config)
    except (RuntimeError, NotImplementedError):  # MONAI SwinUNETR calls .item() while building
        net = create_model(architecture, **config)
    return sum(p.numel() for p in net.parameters())


def _millions(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e6:.2f} M"


def _compared(ours: int | None, official: int | None) -> str:
    """The official count, and whether ours equals it to the parameter."""
    if official is None:
        return "-"
    if ours is None:
        return f"{official:,}"
    return f"{official:,} ({'same' if ours == official else f'ours {ours:,}'})"


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  " + "  ".join(str(c).ljust(w) for c, w in zip(header, widths)).rstrip()]
    lines += ["  " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from medswin.models import list_key_maps, list_models, list_presets, preset_card
    from medswin.models.checkpoints import read_checkpoint_card
    from medswin.models.registry import get_entry
    from medswin.models.resolve import list_shipped_weights, shipped_weights

    count = (lambda arch, cfg: None) if args.no_params else _parameter_count

    architectures = []
    for name in list_models():
        entry = get_entry(name)
        architectures.append(
            {
                "name": name,
                "spatial_dims": entry.spatial_dims,
                "parameters": count(name, {}),
                "official_parameters": entry.official_parameters,
                "description": entry.description,
            }
        )
    from medswin.weights import cached_weights, find_weights

    def status(card_id: str) -> str:  # a preset id that is also a published name is pulled, not imported
        if find_weights(card_id) is None:
            return "import"
        return "cached" if cached_weights(card_id) else "pull"

    shipped = list_shipped_weights()  # a shipped model's card is its checkpoint's: listed once, as shipped
    cards = [
        (card_id, preset_card(card_id), status(card_id))
        for card_id in list_presets()
        if card_id not in shipped
    ]
    for name in shipped:
        cards.append((name, read_checkpoint_card(shipped_weights(name)), "shipped"))
    presets = [
        {
            "id": card_id,
            "architecture": card.architecture,
            "spatial_dims": card.spatial_dims,
            "classes": card.num_classes,
            "parameters": count(card.architecture, card.config),
            "weights": status,
            "description": card.description,
        }
        for card_id, card, status in cards
    ]
    key_maps = [
        {
            "name": km.name,
            "architectures": list(km.architectures),
            "partial": km.partial,
            "description": km.description,
        }
        for km in list_key_maps()
    ]
    if args.json:
        print(
            json.dumps({"architectures": architectures, "presets": presets, "key_maps": key_maps}, indent=2)
        )
        return 0
    print("Architectures (create_model NAME):")
    print(
        _table(
            [
                [
                    a["name"],
                    f"{a['spatial_dims']}D",
                    _millions(a["parameters"]),
                    _compared(a["parameters"], a["official_parameters"]),
                    a["description"],
                ]
                for a in architectures
            ],
            ["name", "dims", "params", "official", "description"],
        )
    )
    print(
        "\nModels (-m ID; 'pull' = published weights, fetched on first use (medswin weights list); "
        "'import' = weights not shipped, see 'medswin card ID'):"
    )
    print(
        _table(
            [
                [
                    p["id"],
                    p["architecture"],
                    f"{p['spatial_dims']}D",
                    str(p["classes"]),
                    _millions(p["parameters"]),
                    p["weights"],
                ]
                for p in presets
            ],
            ["id", "architecture", "dims", "classes", "params", "weights"],
        )
    )
    print("\nCheckpoint key maps (medswin import-checkpoint --key-map NAME):")
    print(
        _table(
            [
                [
                    k["name"],
                    ",".join(k["architectures"]),
                    "partial" if k["partial"] else "full",
                    k["description"],
                ]
                for k in key_maps
            ],
            ["name", "architectures", "fills", "reads"],
        )
    )
    return 0


def run_card(args: argparse.Namespace) -> int:
    from medswin.models import resolve_model

    _, card = resolve_model(args.model, load_weights=False)
    if args.json:
        print(card.to_json())
        return 0
    pre = card.to_dict()["preprocessing"]
    lines = [
        f"{card.id}: {card.description}",
        f"  architecture  {card.architecture}  {json.dumps(card.config)}",
        f"  modality      {card.modality}; channels {', '.join(card.channels)}",
        f"  output        {card.activation}, {card.num_classes} channel(s)",
    ]
    lines += [f"  label {value:>3}     {name}" for value, name in sorted(card.labels.items())]
    lines += [f"  region        {r.name}: channel {r.channel} -> label {r.label}" for r in card.regions]
    lines += [
        f"  orientation   {pre['orientation'] or 'keep input'}; "
        + (f"spacing {pre['spacing']} mm" if pre["spacing"] else "spacing: keep input"),
        f"  intensity     {json.dumps(pre['intensity'])}",
        f"  inference     roi {list(card.roi_size)}, overlap {card.overlap}"
        + (f", 2D slices along axis {card.slice_axis}" if card.slice_axis is not None else ""),
    ]
    lines += [f"  {key:<13} {value}" for key, value in card.provenance.items()]
    print("\n".join(lines))
    return 0
