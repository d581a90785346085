"""Lazy package exports (PEP 562): a package names its public API without importing it.

``medswin --help`` must not load torch, SciPy or MONAI, yet ``from medswin.io import read_image``
should keep working; each package lists which submodule holds each name, and the submodule is
imported the first time one of its names is used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: dict[str, tuple[str, ...]]
) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """``__all__``, ``__getattr__`` and ``__dir__`` for ``package``.

    Args:
        package: the package's ``__name__``.
        exports: submodule path -> the public names it defines, e.g. ``{"medswin.io.image": ("Image",)}``.
    """
    owner = {name: module for module, names in exports.items() for name in names}
    submodules = {module.rsplit(".", 1)[-1] for module in exports}
    if clashes := sorted(submodules & owner.keys()):
        # Importing submodule ``x`` binds ``package.x`` to the module, hiding a lazy function ``x``.
        raise ValueError(f"{package}: exported names {clashes} are also submodule names")

    def __getattr__(name: str) -> Any:
        if name not in owner:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(owner[name]), name)

    def __dir__() -> list[str]:
        return sorted(owner)

    return list(owner), __getattr__, __dir__
