"""medswin.weights: published Swin-family weights by name; downloaded, verified, converted once, cached.

``registry.json`` (data) lists the published files; :func:`pull` downloads one (resume, proxy,
``MEDSWIN_MIRROR``), checks its checksum, converts it through :mod:`medswin.models`' import path
and caches medswin's own checkpoint under :func:`weights_home` (``MEDSWIN_HOME``);
``MEDSWIN_OFFLINE=1`` never touches the network. Importing this package does not import torch;
it registers these names with :func:`medswin.models.resolve_model` (:mod:`medswin.weights.lookup`).
"""

from __future__ import annotations

from medswin._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "medswin.weights.cache": ("converted_path", "offline", "weights_home"),
        "medswin.weights.pulling": (
            "cached_weights",
            "ensure_weights",
            "import_file",
            "list_cached_weights",
            "pull",
        ),
        "medswin.weights.registry": ("WeightsEntry", "find_weights", "get_weights", "list_weights"),
    },
)


def _register() -> None:
    """Offer the registry's and the cache's names to :func:`medswin.models.resolve_model` (its hook)."""
    from medswin.models.resolve import register_weights_source
    from medswin.weights.lookup import PublishedWeights

    register_weights_source(PublishedWeights())


_register()
