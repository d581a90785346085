"""Checkpoints: medswin's own safetensors format, and safe reading of foreign (official) files.

medswin format: one ``.safetensors`` file whose metadata holds the model card JSON, so a model
is rebuilt from the file alone (:func:`load_checkpoint`) and a prediction is reproducible.

Foreign files (research-contributions ``.pt``, Swin-Unet ``.pth``, ImageNet Swin-T ...) are read
with ``torch.load(weights_only=True)``, allowing only the numpy scalar types that training scripts
store beside the weights (e.g. research-contributions' ``best_acc`` is a ``numpy.float64``). A
pickle that would run code is refused, never executed. A registered key map
(:mod:`medswin.models.key_maps`) then renames the tensors for the model, and a
:class:`LoadReport` says exactly what loaded, what is missing, unexpected or the wrong shape.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medswin.errors import CheckpointError, ModelCardError
from medswin.models.card import ModelCard
from medswin.models.key_maps import (
    KeyMap,
    default_key_map,
    get_key_map,
    official_key_map,
    register_key_map,
)

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "LoadReport",
    "save_checkpoint",
    "load_checkpoint",
    "read_checkpoint_card",
    "replace_checkpoint_card",
    "read_state_dict",
    "read_checkpoint_fields",
    "load_foreign_weights",
    "import_checkpoint",
    "register_key_map",
    "official_key_map",
]

log = logging.getLogger(__name__)

FORMAT_NAME = "medswin"
FORMAT_VERSION = "1"
#: state_dict entries a model computes itself (constant index tables); never reported as missing.
DERIVED_BUFFER_SUFFIXES = ("relative_position_index",)
#: container keys under which training scripts store the state_dict, tried in order.
_CONTAINER_KEYS = ("state_dict", "model", "model_weights", "network_weights", "net", "model_state_dict")


# ------------------------------------------------------------------------------ load report
@dataclass
class LoadReport:
    """What happened when a foreign state_dict was mapped onto a model.

    Attributes:
        source: the file (or a description) the tensors came from.
        key_map: name of the key map used.
        loaded: model keys that received a tensor.
        missing: model keys the checkpoint did not provide (they keep their initial values).
        unexpected: checkpoint keys (after mapping) the model does not have.
        mismatched: ``(key, checkpoint shape, model shape)`` for keys present in both.
        notes: conversions the key map made (e.g. channel folding, mirrored decoder blocks).
    """

    source: str
    key_map: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when every model key was loaded and nothing was left over or mis-shaped."""
        return not (self.missing or self.unexpected or self.mismatched)

    def summary(self, limit: int = 8) -> str:
        """Multi-line human-readable report (lists truncated to ``limit`` entries each)."""

        def listing(items: list[str]) -> str:
            shown = ", ".join(items[:limit])
            return shown + (f", ... (+{len(items) - limit} more)" if len(items) > limit else "")

        lines = [
            f"checkpoint {self.source} (key map {self.key_map}):",
            f"  loaded      {len(self.loaded)}",
            f"  missing     {len(self.missing)}" + (f": {listing(self.missing)}" if self.missing else ""),
            f"  unexpected  {len(self.unexpected)}"
            + (f": {listing(self.unexpected)}" if self.unexpected else ""),
            f"  mismatched  {len(self.mismatched)}"
            + (
                ": "
                + listing([f"{k} checkpoint {list(a)} vs model {list(b)}" for k, a, b in self.mismatched])
                if self.mismatched
                else ""
            ),
        ]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


# ------------------------------------------------------------------------------ medswin format
def _reference_state(card: ModelCard, source: str) -> Mapping[str, Any]:
    """The state_dict of the model ``card`` describes, for key/shape checks (meta tensors when possible)."""
    import torch

    try:
        try:
            with torch.device("meta"):  # shapes only, no memory or init cost
                return card.create_model().state_dict()
        except (RuntimeError, NotImplementedError):  # e.g. MONAI calls .item() while building
            return card.create_model().state_dict()
    except (ModelCardError, ValueError) as error:
        raise CheckpointError(f"{source}: its model card cannot build a model: {error}") from None


def _check_against_card(
    card: ModelCard, tensors: Mapping[str, Any], source: str, reference: Mapping[str, Any]
) -> None:
    """Raise CheckpointError unless ``tensors`` has exactly the keys and shapes of ``reference``."""
    shapes = {k: tuple(v.shape) for k, v in tensors.items()}
    expected = {k: tuple(v.shape) for k, v in reference.items()}
    missing = sorted(set(expected) - set(shapes))
    unexpected = sorted(set(shapes) - set(expected))
    mismatched = sorted(
        f"{k} file {list(shapes[k])} vs card {list(expected[k])}"
        for k in set(shapes) & set(expected)
        if shapes[k] != expected[k]
    )
    if missing or unexpected or mismatched:
        parts = []
        for label, items in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("mismatched shape", mismatched),
        ):
            if items:
                more = f" (+{len(items) - 6} more)" if len(items) > 6 else ""
                parts.append(f"{len(items)} {label}: {', '.join(items[:6])}{more}")
        raise CheckpointError(
            f"{source}: weights do not match the model card {card.id!r} (architecture {card.architecture}, "
            f"config {card.config}): " + "; ".join(parts) + ". Fix the card's config (e.g. feature_size, "
            "in/out_channels, use_v2) or re-import the checkpoint with the right card."
        )


def save_checkpoint(model: Any, card: ModelCard, path: str | Path) -> Path:
    """Write ``model``'s weights with ``card`` embedded, atomically (temp file + ``os.replace``).

    The card must describe the model (same keys and shapes), so the file can always be loaded
    back with :func:`load_checkpoint`. Returns the path written.
    """
    from safetensors.torch import save_file

    from medswin import __version__

    path = Path(path)
    if path.suffix != ".safetensors":
        raise CheckpointError(
            f"{path}: medswin checkpoints are .safetensors files; choose a name ending in .safetensors"
        )
    state = model.state_dict()
    source = f"model being saved to {path}"
    _check_against_card(card, state, source, _reference_state(card, source))
    tensors: dict[str, Any] = {}
    seen: set[tuple[int, int]] = set()
    for key, value in state.items():
        tensor = value.detach().to("cpu").contiguous()
        ident = (tensor.untyped_storage().data_ptr(), tensor.storage_offset())
        if ident in seen:  # safetensors refuses tensors sharing memory
            tensor = tensor.clone()
        seen.add(ident)
        tensors[key] = tensor
    metadata = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "medswin_version": __version__,
        "card": card.to_json(),
    }
    from medswin.files import atomic_output

    with atomic_output(path) as temporary:
        save_file(tensors, str(temporary), metadata=metadata)
    log.info("saved checkpoint %s (%s, %d tensors)", path, card.id, len(tensors))
    return path


def _read_metadata(path: Path) -> dict[str, str]:
    from safetensors import safe_open

    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.suffix in (".pt", ".pth", ".bin", ".ckpt", ".tar"):
        raise CheckpointError(
            f"{path}: a PyTorch file, not a medswin checkpoint; convert it with "
            "'medswin import-checkpoint SRC --preset NAME -o OUT.safetensors'"
        )
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
    except Exception as error:  # safetensors raises its own SafetensorError / OSError
        raise CheckpointError(f"{path}: not a readable .safetensors file ({error})") from None
    if metadata.get("format") != FORMAT_NAME or "card" not in metadata:
        raise CheckpointError(
            f"{path}: a safetensors file without a medswin model card; convert official weights with "
            "'medswin import-checkpoint SRC --preset NAME -o OUT.safetensors'"
        )
    if metadata.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: medswin checkpoint format {metadata.get('format_version')!r}; this medswin reads {FORMAT_VERSION!r}"
        )
    return metadata


def read_checkpoint_card(path: str | Path) -> ModelCard:
    """The model card embedded in a medswin checkpoint, without reading the weights."""
    path = Path(path)
    metadata = _read_metadata(path)
    return ModelCard.from_json(metadata["card"], source=f"{path} (embedded card)")


def replace_checkpoint_card(path: str | Path, card: ModelCard) -> Path:
    """Embed ``card`` in the checkpoint at ``path`` in place of its card, the tensors kept bit for bit.

    For fields that do not change what the weights compute (volume ranges, intended use,
    provenance): the new card must still build the model the tensors fit, else nothing is written.
    """
    from safetensors.torch import load_file, save_file

    from medswin.files import atomic_output

    path = Path(path)
    metadata = _read_metadata(path)
    tensors = load_file(str(path), device="cpu")
    try:
        model = card.create_model()
    except (ModelCardError, ValueError) as error:
        raise CheckpointError(f"{path}: the new model card cannot build a model: {error}") from None
    _check_against_card(card, tensors, str(path), model.state_dict())
    with atomic_output(path) as temporary:
        save_file(tensors, str(temporary), metadata={**metadata, "card": card.to_json()})
    log.info("replaced the model card embedded in %s (%s)", path, card.id)
    return path


def load_checkpoint(path: str | Path, device: str = "cpu") -> tuple[Any, ModelCard]:
    """Build the model described by the embedded card and load the weights strictly.

    Returns ``(model in eval mode on device, card)``. Raises :class:`CheckpointError` naming every
    missing, unexpected or mis-shaped key when the weights do not fit the card.
    """
    from safetensors.torch import load_file

    path = Path(path)
    card = read_checkpoint_card(path)
    try:
        tensors = load_file(str(path), device="cpu")
    except Exception as error:
        raise CheckpointError(f"{path}: cannot read tensors ({error})") from None
    try:
        model = card.create_model()
    except (ModelCardError, ValueError) as error:
        raise CheckpointError(f"{path}: its embedded model card cannot build a model: {error}") from None
    _check_against_card(card, tensors, str(path), model.state_dict())
    model.load_state_dict(tensors, strict=True)
    return model.to(device).eval(), card


# ------------------------------------------------------------------------------ foreign files
def _numpy_safe_globals() -> list[Any]:
    """numpy objects that training scripts' pickles reference for scalar metrics, and nothing else.

    ``numpy.float64(0.82)`` pickles as ``multiarray.scalar(dtype, bytes)``; numpy 1.x files name it
    ``numpy.core.multiarray.scalar``, numpy 2 files ``numpy._core.multiarray.scalar``. Rebuilding the
    dtype needs ``numpy.dtype`` and the concrete dtype class (``numpy.dtypes.Float64DType`` ...).
    """
    import numpy as np

    scalar = np._core.multiarray.scalar
    allowed: list[Any] = [
        (scalar, "numpy.core.multiarray.scalar"),
        (scalar, "numpy._core.multiarray.scalar"),
        np.dtype,
    ]
    for name in (
        "Float16DType",
        "Float32DType",
        "Float64DType",
        "Int8DType",
        "Int16DType",
        "Int32DType",
        "Int64DType",
        "UInt8DType",
        "UInt16DType",
        "UInt32DType",
        "UInt64DType",
        "BoolDType",
    ):
        allowed.append(getattr(np.dtypes, name))
    return allowed


def _unwrap(obj: Any, path: Path) -> dict[str, Any]:
    import torch

    def is_state_dict(value: Any) -> bool:
        return (
            isinstance(value, Mapping)
            and bool(value)
            and all(isinstance(v, torch.Tensor) for v in value.values())
        )

    if is_state_dict(obj):
        return dict(obj)
    if isinstance(obj, Mapping):
        for key in _CONTAINER_KEYS:
            if is_state_dict(obj.get(key)):
                extras = {
                    k: v for k, v in obj.items() if k != key and not isinstance(v, (Mapping, torch.Tensor))
                }
                if extras:
                    log.info("%s: %r holds the weights; other fields: %s", path, key, extras)
                return dict(obj[key])
        top = ", ".join(repr(k) for k in list(obj)[:12])
        raise CheckpointError(
            f"{path}: no state_dict found (top-level keys: {top}); expected tensors at the top level or under "
            f"one of {', '.join(_CONTAINER_KEYS)}"
        )
    raise CheckpointError(f"{path}: holds a {type(obj).__name__}, not a state_dict")


def read_state_dict(path: str | Path) -> dict[str, Any]:
    """Tensors of a foreign checkpoint (``.pt``/``.pth``/``.bin``/``.safetensors``), read without unpickling code.

    Containers such as ``{"state_dict": ..., "epoch": ..., "best_acc": ...}``, ``{"model": ...}`` and
    ``{"model_weights": ...}`` are unwrapped. Raises :class:`CheckpointError` for unreadable files
    and for pickles referencing anything beyond tensors, containers and numpy scalars.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as error:
            raise CheckpointError(f"{path}: not a readable .safetensors file ({error})") from None
    return _unwrap(_load_torch_file(path), path)


def read_checkpoint_fields(path: str | Path) -> dict[str, Any]:
    """The plain values stored beside the weights (``epoch``, ``best_acc``, a MONAI version ...), read safely.

    Top-level non-tensor entries of a PyTorch file (nested dicts of plain values kept, tensors
    dropped), or a ``.safetensors`` file's metadata. Lets callers learn what a file says about
    itself (e.g. the MONAI version it was trained with) without a second, less careful reader.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt", device="cpu") as handle:
                return dict(handle.metadata() or {})
        except Exception as error:
            raise CheckpointError(f"{path}: not a readable .safetensors file ({error})") from None

    def plain(value: Any) -> Any:
        if isinstance(value, Mapping):
            kept = {k: plain(v) for k, v in value.items() if not isinstance(v, torch.Tensor)}
            return {k: v for k, v in kept.items() if v is not None}
        return value if isinstance(value, (str, int, float, bool)) or hasattr(value, "item") else None

    obj = _load_torch_file(path)
    return plain(obj) if isinstance(obj, Mapping) else {}


def _load_torch_file(path: Path) -> Any:
    """``torch.load(weights_only=True)`` allowing numpy scalars only; refusals become CheckpointError."""
    import torch

    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # UnpicklingError for unsafe globals; RuntimeError/EOFError for corrupt files
        text = str(error)
        found = re.search(r"GLOBAL ([\w.]+)", text)
        if found:
            detail = f"it references {found.group(1)}, which is not a tensor, container or numpy scalar"
        else:  # torch's own text advises weights_only=False; keep only the unpickler's reason
            reason = text.split("WeightsUnpickler error:")[-1].split("Check the documentation")[0]
            detail = " ".join(reason.split())[:300] or type(error).__name__
            detail = f"not a readable PyTorch weights file ({detail})"
        raise CheckpointError(
            f"{path}: refused or failed to load safely (weights_only): {detail}. medswin never unpickles "
            "arbitrary objects; if you trust the file, re-save just its tensors as a plain state_dict or safetensors."
        ) from error
    return obj


def load_foreign_weights(
    model: Any, state_dict: Mapping[str, Any], key_map: str | KeyMap, *, source: str = "<state_dict>"
) -> LoadReport:
    """Map ``state_dict`` with ``key_map`` and copy every tensor that fits into ``model``.

    Tensors whose key the model lacks, or whose shape differs, are not loaded and are reported.
    Returns the :class:`LoadReport`; the caller decides whether an incomplete load is acceptable.
    """
    entry = get_key_map(key_map) if isinstance(key_map, str) else key_map
    notes: list[str] = []
    mapped = entry.fn(state_dict, model, notes)
    own = model.state_dict()
    report = LoadReport(source=source, key_map=entry.name, notes=notes)
    to_load = {}
    for key, tensor in mapped.items():
        if key not in own:
            report.unexpected.append(key)
        elif tuple(tensor.shape) != tuple(own[key].shape):
            report.mismatched.append((key, tuple(tensor.shape), tuple(own[key].shape)))
        else:
            to_load[key] = tensor
    report.loaded = sorted(to_load)
    report.missing = [k for k in own if k not in mapped and not k.endswith(DERIVED_BUFFER_SUFFIXES)]
    model.load_state_dict(to_load, strict=False)
    return report


def import_checkpoint(
    source: str | Path, card: ModelCard, *, key_map: str | None = None, partial: bool = False
) -> tuple[Any, LoadReport]:
    """Convert an official checkpoint into ``(model, report)`` for ``card``.

    Args:
        source: the official file.
        card: describes the model to build (architecture and config must match the weights).
        key_map: registered key map name; default: the one registered as default for the card's
            architecture.
        partial: accept missing and unexpected keys (pretraining weights that fill only part of
            the model); mis-shaped keys are always an error.

    Raises :class:`CheckpointError` (with the full report) when the load is not acceptable.
    """
    name = key_map or default_key_map(card.architecture)
    if name is None:
        raise CheckpointError(f"no default key map for architecture {card.architecture!r}; pass key_map=")
    entry = get_key_map(name)
    if entry.architectures and card.architecture not in entry.architectures:
        raise CheckpointError(
            f"key map {name!r} loads {', '.join(entry.architectures)}, but card {card.id!r} is a {card.architecture}"
        )
    model = card.create_model()
    report = load_foreign_weights(model, read_state_dict(source), entry, source=str(source))
    if report.mismatched or (not partial and (report.missing or report.unexpected)):
        hint = (
            " This key map fills only part of the model; pass partial=True (--partial) to accept that."
            if entry.partial and not report.mismatched
            else " Check that the card's config (feature_size, channels, use_v2, patch_norm ...) matches the file."
        )
        raise CheckpointError(
            f"{source}: does not load cleanly into {card.id!r}.\n{report.summary()}\n{hint.strip()}"
        )
    if not report.loaded:
        raise CheckpointError(
            f"{source}: no tensor loaded into {card.id!r} with key map {name!r}.\n{report.summary()}"
        )
    return model.eval(), report
