"""Resolve a ``-m/--model`` argument into a model and its card.

Accepted forms, tried in order (a folder or other non-checkpoint path that merely shares a model's
name, such as a ``demo`` output folder in the working directory, never hides that model; a name
written as a path, ``./demo``, is always the path; a checkpoint file named like a known model is an
ambiguity refused with both named):

1. a path to a medswin checkpoint (``.safetensors``) -> ``(model, card)``;
2. a path to a model card (``.json``) -> ``(None, card)`` (weights to be supplied separately);
3. the name of a checkpoint shipped in ``medswin/models/weights/<name>.safetensors``
   (e.g. ``demo``) -> ``(model, card)``;
4. the name of published weights (``medswin weights list``) or of a file imported into the weights
   cache -> ``(model, card)``, pulling the published file into the cache on first use (never with
   ``load_weights=False``, which returns the card alone);
5. a preset card id (``medswin/models/cards/<id>.json``) -> ``(None, card)``: the card is known
   but its weights are not shipped (import them with ``medswin import-checkpoint``).
"""

from __future__ import annotations

import difflib
from importlib import resources
from pathlib import Path
from typing import Any

from medswin.errors import ModelCardError
from medswin.models.card import ModelCard, has_preset, list_presets, load_card, preset_card

__all__ = ["resolve_model", "shipped_weights", "list_shipped_weights"]


def shipped_weights(name: str) -> Path | None:
    """Path of ``medswin/models/weights/<name>.safetensors`` if that file exists."""
    if not name.replace("_", "").replace("-", "").isalnum():
        return None
    candidate = resources.files("medswin.models").joinpath("weights", f"{name}.safetensors")
    return Path(str(candidate)) if candidate.is_file() else None


def list_shipped_weights() -> list[str]:
    """Names of the checkpoints shipped in ``medswin/models/weights/``."""
    folder = resources.files("medswin.models").joinpath("weights")
    if not folder.is_dir():
        return []
    return sorted(p.name[: -len(".safetensors")] for p in folder.iterdir() if p.name.endswith(".safetensors"))


def _published(name: str, device: str, load_weights: bool) -> tuple[Any, ModelCard] | None:
    """``(model or None, card)`` for a weights-registry name or a name in the weights cache, else None."""
    from medswin.models.checkpoints import load_checkpoint, read_checkpoint_card
    from medswin.weights import cached_weights, ensure_weights, find_weights

    if not name.replace("_", "").replace("-", "").replace(".", "").isalnum() or name.startswith("."):
        return None
    entry = find_weights(name)
    cached = cached_weights(name)
    if entry is None and cached is None:
        return None
    if not load_weights:
        return None, (read_checkpoint_card(cached) if cached is not None else entry.model_card())
    if entry is not None and not entry.predicts:
        raise ModelCardError(
            f"{name} is {entry.task}: it has no trained decoder to predict with. Fine-tune from it: "
            f"'medswin weights pull {name}', then give the printed file as a training recipe's init_from "
            "(partial: true)"
        )
    return load_checkpoint(cached if cached is not None else ensure_weights(name), device)


def _is_checkpoint(path: Path) -> bool:
    """True when ``path`` reads as a medswin checkpoint (its card, without the weights)."""
    from medswin.errors import MedSwinError
    from medswin.models.checkpoints import read_checkpoint_card

    try:
        read_checkpoint_card(path)
    except (MedSwinError, OSError, ValueError):
        return False
    return True


def _is_known_name(name: str) -> bool:
    """True for a shipped checkpoint, a published or cached weights name, or a preset card id."""
    from medswin.weights import cached_weights, find_weights

    if shipped_weights(name) is not None or has_preset(name):
        return True
    if not name.replace("_", "").replace("-", "").replace(".", "").isalnum() or name.startswith("."):
        return False
    return find_weights(name) is not None or cached_weights(name) is not None


def resolve_model(
    spec: str | Path, device: str = "cpu", *, load_weights: bool = True
) -> tuple[Any, ModelCard]:
    """``(model or None, card)`` for a checkpoint path, card path, shipped checkpoint name or preset id.

    Args:
        spec: the ``-m`` argument.
        device: where a loaded model is placed.
        load_weights: when False, return ``(None, card)`` even for checkpoints (reads only the card).
    """
    from medswin.models.checkpoints import load_checkpoint, read_checkpoint_card

    text = str(spec)
    path = Path(text).expanduser()
    written_as_path = any(sep in text for sep in ("/", "\\")) or text.startswith("~")
    if not written_as_path and path.suffix != ".safetensors" and _is_known_name(text):
        if path.is_file() and _is_checkpoint(path):  # a checkpoint called like a model: say which is which
            raise ModelCardError(
                f"model {text!r} is ambiguous: both a known model and the file {path.resolve()}; "
                f"write ./{text} for the file, or move it"
            )
        is_path = False  # the name wins over a folder of that name (e.g. a demo output folder)
    else:
        is_path = path.suffix == ".safetensors" or (path.exists() and path.suffix != ".json")
    if is_path:
        return load_checkpoint(path, device) if load_weights else (None, read_checkpoint_card(path))
    if path.suffix == ".json":
        return None, load_card(path)
    weights = shipped_weights(text)
    if weights is not None:
        return load_checkpoint(weights, device) if load_weights else (None, read_checkpoint_card(weights))
    published = _published(text, device, load_weights)
    if published is not None:
        return published
    if has_preset(text):
        return None, preset_card(text)
    presets = list_presets()
    from medswin.weights import list_weights

    known = sorted(set(presets) | set(list_shipped_weights()) | {e.name for e in list_weights()})
    close = difflib.get_close_matches(text, known, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise ModelCardError(
        f"model {text!r} is neither a checkpoint file, a card file, nor a known model.{hint} "
        f"Known models: {', '.join(known)}"
    )
