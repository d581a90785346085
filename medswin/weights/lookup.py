"""The weights cache and the published registry as a source of model names for ``-m``.

:func:`medswin.models.resolve_model` asks the sources registered with
:func:`medswin.models.resolve.register_weights_source`; this package registers :class:`PublishedWeights`
when it is imported. (``medswin.weights`` converts files with :mod:`medswin.models`, so the models
package cannot import it back: the hook keeps the dependency one way.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medswin.errors import ModelCardError

__all__ = ["PublishedWeights"]


class PublishedWeights:
    """Names in the weights registry (``medswin weights list``) and files imported into the cache."""

    def knows(self, name: str) -> bool:
        from medswin.weights.pulling import cached_weights
        from medswin.weights.registry import find_weights

        return find_weights(name) is not None or cached_weights(name) is not None

    def card(self, name: str) -> Any:
        from medswin.models.checkpoints import read_checkpoint_card
        from medswin.weights.pulling import cached_weights
        from medswin.weights.registry import get_weights

        cached = cached_weights(name)
        return read_checkpoint_card(cached) if cached is not None else get_weights(name).model_card()

    def checkpoint(self, name: str) -> Path:
        from medswin.weights.pulling import cached_weights, ensure_weights
        from medswin.weights.registry import find_weights

        entry = find_weights(name)
        if entry is not None and not entry.predicts:
            raise ModelCardError(
                f"{name} is {entry.task}: it has no trained decoder to predict with. Fine-tune from it: "
                f"'medswin weights pull {name}', then give the printed file as a training recipe's init_from "
                "(partial: true)"
            )
        cached = cached_weights(name)
        return cached if cached is not None else ensure_weights(name)

    def names(self) -> list[str]:
        from medswin.weights.registry import list_weights

        return [entry.name for entry in list_weights()]
