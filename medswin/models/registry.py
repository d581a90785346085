"""Model registry: architecture name -> builder and config dataclass (timm-style).

Importing this module does not import torch; builders import their network code when called.
Architectures register themselves in the modules listed in ``_ARCHITECTURE_MODULES``.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from medswin.errors import ModelCardError

__all__ = [
    "ModelEntry",
    "PATCH_MERGING",
    "register_model",
    "create_model",
    "list_models",
    "get_entry",
    "model_config",
    "patch_merging",
]

#: what :attr:`ModelEntry.patch_merging` may say: ``"monai"`` is MONAI's 3D ``PatchMerging``, whose
#: order of the eight sub-grids changed in MONAI 1.5 without changing any shape (a checkpoint trained
#: before 1.5 loads silently and computes another function, so its import must decide the order).
PATCH_MERGING = ("monai",)

#: modules whose import registers architectures; imported on first registry look-up.
_ARCHITECTURE_MODULES = (
    "medswin.models.swin_unetr",
    "medswin.models.swin_unet",
    "medswin.models.swin_x2s",
)


@dataclass(frozen=True)
class ModelEntry:
    """One registered architecture.

    Attributes:
        name: registry key, e.g. ``"swin_unetr"``.
        config_class: dataclass holding every constructor argument with its default.
        builder: ``builder(config) -> torch.nn.Module``.
        spatial_dims: 2 or 3 (the default configuration's), for listing.
        description: one line for ``medswin models``.
        defaults: overrides applied on top of ``config_class()`` for this name (variants such as
            ``swin_x2s_tiny`` share a config class and builder).
        official_parameters: learnable parameters the original project publishes for this default
            configuration, when known (``medswin models`` prints ours beside it).
        patch_merging: the network's patch-merging layer when its checkpoints depend on a library
            version (one of :data:`PATCH_MERGING`), else None. Declared by the architecture, so a
            new variant says it and :mod:`medswin.weights.legacy` never guesses from names.
    """

    name: str
    config_class: type
    builder: Callable[[Any], Any]
    spatial_dims: int
    description: str
    defaults: dict[str, Any] = dataclasses.field(default_factory=dict)
    official_parameters: int | None = None
    patch_merging: str | None = None


_REGISTRY: dict[str, ModelEntry] = {}
_loaded = False


def register_model(
    name: str,
    config_class: type,
    builder: Callable[[Any], Any],
    *,
    spatial_dims: int,
    description: str,
    defaults: dict[str, Any] | None = None,
    official_parameters: int | None = None,
    patch_merging: str | None = None,
) -> None:
    """Register an architecture under ``name`` (re-registering the same name replaces it).

    ``patch_merging="monai"`` declares MONAI's 3D PatchMerging (see :data:`PATCH_MERGING`); the
    config class must then have a ``legacy_merging`` field, which imports of its checkpoints set.
    """
    if patch_merging is not None:
        if patch_merging not in PATCH_MERGING:
            raise ValueError(f"patch_merging must be one of {PATCH_MERGING} or None, got {patch_merging!r}")
        if "legacy_merging" not in {f.name for f in dataclasses.fields(config_class)}:
            raise ValueError(
                f"{name}: patch_merging={patch_merging!r} needs a legacy_merging field in {config_class.__name__}"
            )
    _REGISTRY[name] = ModelEntry(
        name,
        config_class,
        builder,
        spatial_dims,
        description,
        dict(defaults or {}),
        official_parameters,
        patch_merging,
    )


def _ensure_loaded() -> None:
    global _loaded
    if _loaded:
        return
    for module in _ARCHITECTURE_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as error:
            if error.name != module:  # a missing dependency inside the module is a real error
                raise
    _loaded = True


def get_entry(name: str) -> ModelEntry:
    """The registry entry for ``name``; unknown names get a "did you mean"."""
    _ensure_loaded()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ModelCardError(f"unknown model {name!r}.{hint} Known models: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def patch_merging(name: str) -> str | None:
    """The patch-merging layer architecture ``name`` declares (:attr:`ModelEntry.patch_merging`)."""
    return get_entry(name).patch_merging


def list_models() -> list[str]:
    """Names of all registered architectures, sorted."""
    _ensure_loaded()
    return sorted(_REGISTRY)


def model_config(name: str, **overrides: Any) -> Any:
    """The config dataclass instance for ``name`` with variant defaults and ``overrides`` applied."""
    entry = get_entry(name)
    fields = {f.name for f in dataclasses.fields(entry.config_class)}
    unknown = set(overrides) - fields
    if unknown:
        raise ModelCardError(
            f"model {name!r} has no option(s) {sorted(unknown)}; its options are {sorted(fields)}"
        )
    return entry.config_class(**{**entry.defaults, **overrides})


def create_model(name: str, **overrides: Any) -> Any:
    """Build the ``torch.nn.Module`` registered as ``name`` with ``overrides`` on its default config.

    Example::

        net = create_model("swin_unetr", in_channels=1, out_channels=14, feature_size=12)
    """
    entry = get_entry(name)
    return entry.builder(model_config(name, **overrides))
