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
   ``load_weights=False``, which returns the card alone). These names come from the
   :class:`WeightsSource` that :mod:`medswin.weights` registers when it is imported (the CLI, the
   predictor and the napari plugin import it): ``medswin.weights`` builds on this package
   (it converts files into checkpoints), so this package asks it through the hook, never imports it;
5. a preset card id (``medswin/models/cards/<id>.json``) -> ``(None, card)``: the card is known
   but its weights are not shipped (import them with ``medswin import-checkpoint``).
"""

from __future__ import annotations

import difflib
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from medswin.errors import ModelCardError
from medswin.models.card import ModelCard, has_preset, list_presets, load_card, preset_card

__all__ = [
    "resolve_model",
    "shipped_weights",
    "list_shipped_weights",
    "WeightsSource",
    "register_weights_source",
]


class WeightsSource(Protocol):
    """Named weights beyond the shipped ones (:mod:`medswin.weights`: published and cached files)."""

    def knows(self, name: str) -> bool:
        """Whether ``name`` is one of its names (cheap: no download, no card built)."""
        ...

    def card(self, name: str) -> ModelCard:
        """The card of ``name`` (a known name), without downloading anything."""
        ...

    def checkpoint(self, name: str) -> Path:
        """The medswin checkpoint of ``name`` (a known name), fetched on first use; raises
        :class:`~medswin.errors.MedSwinError` when it cannot predict or cannot be had."""
        ...

    def names(self) -> list[str]:
        """Every name it offers (for "did you mean")."""
        ...


_SOURCES: list[WeightsSource] = []


def register_weights_source(source: WeightsSource) -> None:
    """Add ``source`` to the names :func:`resolve_model` knows (once per type: re-registering replaces)."""
    _SOURCES[:] = [s for s in _SOURCES if type(s) is not type(source)] + [source]


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


def _source_for(name: str) -> WeightsSource | None:
    """The registered source that knows ``name`` (a plain name, never a path), or None."""
    if not name.replace("_", "").replace("-", "").replace(".", "").isalnum() or name.startswith("."):
        return None
    return next((source for source in _SOURCES if source.knows(name)), None)


def _published(name: str, device: str, load_weights: bool) -> tuple[Any, ModelCard] | None:
    """``(model or None, card)`` for a name a :class:`WeightsSource` knows, else None."""
    from medswin.models.checkpoints import load_checkpoint

    source = _source_for(name)
    if source is None:
        return None
    if not load_weights:
        return None, source.card(name)
    return load_checkpoint(source.checkpoint(name), device)


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
    return shipped_weights(name) is not None or has_preset(name) or _source_for(name) is not None


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
    offered = {n for source in _SOURCES for n in source.names()}
    known = sorted(set(list_presets()) | set(list_shipped_weights()) | offered)
    close = difflib.get_close_matches(text, known, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise ModelCardError(
        f"model {text!r} is neither a checkpoint file, a card file, nor a known model.{hint} "
        f"Known models: {', '.join(known)}"
    )
