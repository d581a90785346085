"""medswin.weights: published Swin-family weights by name; downloaded, verified, converted once, cached.

``registry.json`` (data) lists the published files; :func:`pull` downloads one (resume, proxy,
``MEDSWIN_MIRROR``), checks its checksum, converts it through :mod:`medswin.models`' import path
and caches medswin's own checkpoint under :func:`weights_home` (``MEDSWIN_HOME``);
``MEDSWIN_OFFLINE=1`` never touches the network. Importing this package does not import torch.
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
