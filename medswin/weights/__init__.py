"""medswin.weights: published Swin-family weights by name; downloaded, verified, converted once, cached.

``registry.json`` (data) lists the published files; :func:`pull` downloads one (resume, proxy,
``MEDSWIN_MIRROR``), checks its checksum, converts it through :mod:`medswin.models`' import path
and caches medswin's own checkpoint under :func:`weights_home` (``MEDSWIN_HOME``);
``MEDSWIN_OFFLINE=1`` never touches the network. Importing this package does not import torch.
"""

from __future__ import annotations

from medswin.weights.cache import converted_path, offline, weights_home
from medswin.weights.pull import cached_weights, ensure_weights, import_file, list_cached_weights, pull
from medswin.weights.registry import WeightsEntry, find_weights, get_weights, list_weights

__all__ = [
    "WeightsEntry",
    "list_weights",
    "get_weights",
    "find_weights",
    "weights_home",
    "converted_path",
    "offline",
    "cached_weights",
    "list_cached_weights",
    "pull",
    "ensure_weights",
    "import_file",
]
