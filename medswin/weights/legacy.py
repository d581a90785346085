"""Decide a SwinUNETR file's patch-merging order, or refuse to guess.

MONAI 1.5 changed the order in which 3D PatchMerging concatenates its eight sub-grids without
changing any shape: a checkpoint trained on MONAI <= 1.4 loads without error into today's layer
and computes a different function (measured: 11% of voxels change label). So the flag is never a
default. ``auto`` uses only what the weights themselves can tell: their checksum among the registry's
known files, or a MONAI version stored in the checkpoint itself. A MONAI bundle's ``monai_version``
is not such evidence: it is the MONAI version the bundle's *configs* were last checked with (the
model-zoo raised it five times without retraining the weights), so it is shown to the user, who
decides, and never used on its own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from medswin.errors import CheckpointError

__all__ = [
    "LEGACY_CHOICES",
    "check_legacy_choice",
    "uses_patch_merging",
    "legacy_from_monai_version",
    "decide_legacy_merging",
    "with_legacy_merging",
]

LEGACY_CHOICES = ("auto", "yes", "no")
#: the first MONAI release with the corrected merging order (PR #8285).
_FIXED_IN = (1, 5)


def uses_patch_merging(card: Any) -> bool:
    """True for cards whose architecture declares MONAI's 3D PatchMerging in the model registry
    (``register_model(..., patch_merging="monai")``: SwinUNETR, V2 and any variant that says so)."""
    from medswin.models.registry import patch_merging

    return patch_merging(card.architecture) == "monai"


def legacy_from_monai_version(version: str) -> bool | None:
    """True for MONAI < 1.5, False for >= 1.5, None when ``version`` is not a version."""
    found = re.match(r"\s*v?(\d+)\.(\d+)", str(version))
    if not found:
        return None
    return (int(found.group(1)), int(found.group(2))) < _FIXED_IN


def _stored_monai_version(fields: Mapping[str, Any]) -> str | None:
    """A MONAI version the checkpoint stores about itself (``monai_version`` at the top or in a metadata dict)."""
    for key in ("monai_version", "MONAI_version"):
        if isinstance(fields.get(key), str):
            return fields[key]
    for key in ("metadata", "meta", "meta_dict", "config"):
        nested = fields.get(key)
        if isinstance(nested, Mapping):
            found = _stored_monai_version(nested)
            if found:
                return found
    return None


def _known_checksum(sha256: str, md5: str) -> tuple[str, bool] | None:
    """``(entry name, flag)`` when the file is a registry entry's published or recorded file."""
    from medswin.weights.cache import read_pins
    from medswin.weights.registry import list_weights

    pins = read_pins()
    for entry in list_weights():
        if entry.legacy_merging is None:
            continue
        pinned = pins.get(entry.file.name, {}).get("sha256")
        if sha256 in (entry.file.sha256, pinned) or md5 == entry.file.md5:
            return entry.name, entry.legacy_merging
    return None


def check_legacy_choice(choice: str, card: Any) -> None:
    """Refuse an unknown choice, and yes/no for a model that has no patch merging (before any work)."""
    if choice not in LEGACY_CHOICES:
        raise CheckpointError(f"--legacy-merging must be one of {', '.join(LEGACY_CHOICES)}, got {choice!r}")
    if choice != "auto" and not uses_patch_merging(card):
        raise CheckpointError(
            f"--legacy-merging {choice}: model card {card.id!r} is a {card.architecture}, which has no "
            "MONAI patch merging; leave the option out"
        )


def decide_legacy_merging(
    choice: str,
    card: Any,
    source: Path,
    *,
    checksums: tuple[str, str] | None = None,
    bundle_monai_version: str | None = None,
) -> tuple[bool | None, str]:
    """``(flag, why)`` for importing ``source`` into ``card``; ``(None, "")`` for models without patch merging.

    Args:
        choice: ``"yes"`` (trained on MONAI <= 1.4), ``"no"`` (MONAI >= 1.5) or ``"auto"``.
        card: the card the file is imported with.
        source: the checkpoint file (read safely for a stored MONAI version when ``auto``).
        checksums: ``(sha256, md5)`` of the file as the user gave it (a bundle's zip or the .pt).
        bundle_monai_version: ``monai_version`` from a MONAI bundle's ``configs/metadata.json``:
            quoted in the refusal so the user can judge, never decisive (see the module docstring).

    Raises :class:`CheckpointError` when ``auto`` finds nothing to go on, explaining the choice.
    """
    check_legacy_choice(choice, card)
    if not uses_patch_merging(card):
        return None, ""
    if choice != "auto":
        return choice == "yes", f"--legacy-merging {choice} given when importing {source.name}"
    if checksums is not None:
        known = _known_checksum(*checksums)
        if known:
            name, flag = known
            return (
                flag,
                f"{source.name} is the published file of {name} (checksum), which needs legacy_merging {flag}",
            )
    from medswin.models.checkpoints import read_checkpoint_fields

    stored = _stored_monai_version(read_checkpoint_fields(source))
    if stored and legacy_from_monai_version(stored) is not None:
        flag = bool(legacy_from_monai_version(stored))
        return flag, f"{source.name} stores monai_version {stored}"
    bundle_note = (
        f" The bundle's metadata.json says monai_version {bundle_monai_version}, but that is the MONAI version "
        "its configs were last checked with, not necessarily the one that trained these weights (the "
        "model-zoo raised it without retraining), so medswin does not decide from it; check the bundle's "
        "changelog for when model.pt was last trained."
        if bundle_monai_version
        else ""
    )
    raise CheckpointError(
        f"{source}: cannot tell which MONAI version trained it (not a known published file, no stored MONAI "
        f"version), and that decides its patch merging.{bundle_note} MONAI 1.5 changed the order of 3D "
        "PatchMerging without changing any shape, so a file trained on MONAI <= 1.4 loads without error into "
        "the new order and computes a different function (about 11% of voxels change label). Re-run with "
        "--legacy-merging yes if it was trained with MONAI 1.4 or older (every published SwinUNETR file was), "
        "or --legacy-merging no if it was trained with MONAI 1.5 or newer."
    )


def with_legacy_merging(card: Any, flag: bool | None, why: str) -> Any:
    """``card`` with the decided merging flag in its config and the reason in its provenance;
    unchanged for a model without patch merging (``flag`` None)."""
    if flag is None:
        return card
    return card.replace(
        config={**card.config, "legacy_merging": flag},
        provenance={**card.provenance, "legacy_merging": f"{flag}: {why}"},
    )
