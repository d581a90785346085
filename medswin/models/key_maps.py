"""Registry of key maps: functions that turn a foreign checkpoint's state_dict into a model's.

A key map (timm's ``checkpoint_filter_fn`` idea) lives beside the model it loads and registers
itself here by name, so ``medswin import-checkpoint --key-map NAME`` and
:func:`medswin.models.checkpoints.load_foreign_weights` can find it. Importing this module does
not import torch.

A key map is ``fn(state_dict, model, notes) -> state_dict``: it receives the raw tensors (already
unwrapped from ``{"state_dict": ...}``-style containers), the target ``torch.nn.Module`` (to look
at its keys and shapes) and a list to append human-readable notes to (e.g. "summed RGB patch
weights for 1 input channel"). It returns tensors under the model's key names; keys it cannot
place are returned unchanged so the load report lists them as unexpected.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from medswin.errors import CheckpointError

__all__ = [
    "KeyMap",
    "KeyMapFn",
    "register_key_map",
    "official_key_map",
    "get_key_map",
    "default_key_map",
    "list_key_maps",
    "strip_prefixes",
    "rename_keys",
    "drop_keys",
]

KeyMapFn = Callable[[Mapping[str, Any], Any, list], dict]


@dataclass(frozen=True)
class KeyMap:
    """A registered key map.

    Attributes:
        name: registry key, e.g. ``"swin_unetr_research"``.
        fn: the mapping function (see module docstring).
        architectures: registry names of the models it loads into.
        description: one line: which published files it reads.
        partial: True when it is expected to leave model keys missing (e.g. encoder-only
            pretraining weights); importing then needs ``allow_missing``.
    """

    name: str
    fn: KeyMapFn
    architectures: tuple[str, ...] = ()
    description: str = ""
    partial: bool = False


_KEY_MAPS: dict[str, KeyMap] = {}
_DEFAULTS: dict[str, str] = {}


def register_key_map(
    name: str,
    fn: KeyMapFn,
    *,
    architectures: Iterable[str] = (),
    description: str = "",
    partial: bool = False,
    default: bool = False,
) -> None:
    """Register ``fn`` as key map ``name``; ``default=True`` makes it the map used for its architectures
    when none is named (e.g. by ``medswin import-checkpoint --preset``)."""
    entry = KeyMap(name, fn, tuple(architectures), description, partial)
    _KEY_MAPS[name] = entry
    if default:
        for arch in entry.architectures:
            _DEFAULTS[arch] = name


def _ensure_loaded() -> None:
    # Architecture modules register their key maps on import, like models.
    from medswin.models.registry import _ensure_loaded as load_architectures

    load_architectures()


def get_key_map(name: str) -> KeyMap:
    """The registered :class:`KeyMap` called ``name`` (unknown names get a "did you mean")."""
    _ensure_loaded()
    if name not in _KEY_MAPS:
        close = difflib.get_close_matches(name, _KEY_MAPS, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise CheckpointError(
            f"unknown key map {name!r}.{hint} Known key maps: {', '.join(sorted(_KEY_MAPS))}"
        )
    return _KEY_MAPS[name]


def official_key_map(name: str) -> KeyMapFn:
    """The mapping function registered as ``name``."""
    return get_key_map(name).fn


def default_key_map(architecture: str) -> str | None:
    """Name of the key map used for ``architecture`` when none is given, or ``None``."""
    _ensure_loaded()
    return _DEFAULTS.get(architecture)


def list_key_maps() -> list[KeyMap]:
    """All registered key maps, sorted by name."""
    _ensure_loaded()
    return [_KEY_MAPS[n] for n in sorted(_KEY_MAPS)]


# --------------------------------------------------------------------------- helpers for key maps
def strip_prefixes(state_dict: Mapping[str, Any], prefixes: Iterable[str]) -> dict[str, Any]:
    """Remove any of ``prefixes`` from the start of every key, repeatedly (``module.swin_unet.x`` -> ``x``)."""
    prefixes = tuple(prefixes)
    out = {}
    for key, value in state_dict.items():
        changed = True
        while changed:
            changed = False
            for prefix in prefixes:
                if key.startswith(prefix):
                    key, changed = key[len(prefix) :], True
        out[key] = value
    return out


def rename_keys(state_dict: Mapping[str, Any], rules: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """Apply regex substitutions ``(pattern, replacement string or function)`` to every key, in order."""
    compiled = [(re.compile(p), r) for p, r in rules]
    out = {}
    for key, value in state_dict.items():
        for pattern, replacement in compiled:
            key = pattern.sub(replacement, key)
        out[key] = value
    return out


def drop_keys(state_dict: Mapping[str, Any], pattern: str) -> dict[str, Any]:
    """Keys not matching regex ``pattern`` (searched anywhere in the key)."""
    compiled = re.compile(pattern)
    return {k: v for k, v in state_dict.items() if not compiled.search(k)}
