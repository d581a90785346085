"""The registry of published weights: ``registry.json`` in this package, plus optional extra files.

The registry is data (validated against ``registry.schema.json``): one entry per published file with
its URL(s), checksum when the source publishes one, the preset card and key map it converts with,
the patch-merging flag it needs, its licence and its published score. ``MEDSWIN_WEIGHTS_REGISTRY``
names extra registry files (``os.pathsep``-separated); their entries replace shipped entries of the
same name, so a site (or a test) can point a name at its own files. Importing this module does not
import torch.
"""

from __future__ import annotations

import difflib
import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from medswin.errors import WeightsError

__all__ = [
    "REGISTRY_ENV",
    "WeightsEntry",
    "PublishedFile",
    "load_registry",
    "list_weights",
    "get_weights",
    "find_weights",
]

#: extra registry files, separated by os.pathsep; their entries win over the shipped ones.
REGISTRY_ENV = "MEDSWIN_WEIGHTS_REGISTRY"


@dataclass(frozen=True)
class PublishedFile:
    """One file as its source publishes it.

    Attributes:
        name: published file name (the mirror serves it under this name).
        urls: where to download it, tried in order.
        size: bytes, when the source publishes it.
        md5 / sha256: published checksums (hex), when the source publishes one.
        member: for zip archives, the file inside that holds the weights (e.g. ``model.pt``).
    """

    name: str
    urls: tuple[str, ...]
    size: int | None = None
    md5: str | None = None
    sha256: str | None = None
    member: str | None = None

    @property
    def published_checksum(self) -> tuple[str, str] | None:
        """``(algorithm, hex)`` the source publishes, SHA-256 preferred; ``None`` when it publishes none."""
        if self.sha256:
            return "sha256", self.sha256
        if self.md5:
            return "md5", self.md5
        return None


@dataclass(frozen=True)
class WeightsEntry:
    """A published model medswin can pull by name (see ``registry.schema.json``).

    ``description``, ``provenance`` and ``inference`` (blending, overlap, what is resampled back)
    replace the preset card's where this file differs from the file the preset describes (a smaller
    variant, a retrain, a bundle run another way): each converted card describes and runs its own file.
    """

    name: str
    kind: str
    task: str
    card: str
    key_map: str
    legacy_merging: bool | None
    file: PublishedFile
    source: str
    license: str
    score: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)
    partial: bool = False
    legacy_merging_reason: str = ""
    description: str = ""
    provenance: dict[str, str] = field(default_factory=dict)
    inference: dict[str, Any] = field(default_factory=dict)
    registry: str = "<shipped>"

    @property
    def predicts(self) -> bool:
        """False for pretraining weights (an encoder to fine-tune, not a segmenter)."""
        return self.kind != "pretraining"

    def model_card(self) -> Any:
        """The card the file converts with: the preset (or card file) with this entry's config and flag."""
        from medswin.models.card import load_card, preset_card
        from medswin.models.registry import patch_merging

        if self.card.endswith(".json"):
            path = Path(self.card)
            if not path.is_absolute() and self.registry != "<shipped>":
                path = Path(self.registry).parent / path
            base = load_card(path)
        else:
            base = preset_card(self.card)
        config = {**base.config, **self.config}
        if "legacy_merging" in config or patch_merging(base.architecture) is not None:
            if self.legacy_merging is None:
                raise WeightsError(
                    f"weights registry {self.registry}: entry {self.name!r} is a {base.architecture} and must "
                    "say legacy_merging true or false"
                )
            config["legacy_merging"] = self.legacy_merging
        provenance = {
            **base.provenance,
            **self.provenance,  # what this file's own source says (recipe, split) over the preset's
            "source": self.source,
            "license": self.license,
            "published_score": self.score["text"],
            "weights": f"medswin weights pull {self.name}",
        }
        if self.legacy_merging is not None:
            provenance["legacy_merging"] = self.legacy_merging_reason or str(self.legacy_merging)
        description = self.description or base.description
        if not self.predicts:
            description = f"{self.task}. {description}"
        return base.replace(
            id=self.name, config=config, provenance=provenance, description=description, **self.inference
        )


def _schema() -> dict[str, Any]:
    text = resources.files("medswin.weights").joinpath("registry.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def _parse(text: str, where: str) -> list[WeightsEntry]:
    import jsonschema

    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise WeightsError(f"weights registry {where}: not valid JSON ({error})") from None
    try:
        jsonschema.validate(data, _schema())
    except jsonschema.ValidationError as error:
        at = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise WeightsError(f"weights registry {where}: invalid at {at}: {error.message}") from None
    entries = []
    for item in data["entries"]:
        published = item["file"]
        entries.append(
            WeightsEntry(
                name=item["name"],
                kind=item["kind"],
                task=item["task"],
                card=item["card"],
                key_map=item["key_map"],
                legacy_merging=item["legacy_merging"],
                file=PublishedFile(
                    name=published["name"],
                    urls=tuple(published["urls"]),
                    size=published.get("size"),
                    md5=published.get("md5"),
                    sha256=published.get("sha256"),
                    member=published.get("member"),
                ),
                source=item["source"],
                license=item["license"],
                score=dict(item["score"]),
                config=dict(item.get("config", {})),
                partial=bool(item.get("partial", False)),
                legacy_merging_reason=item.get("legacy_merging_reason", ""),
                description=item.get("description", ""),
                provenance=dict(item.get("provenance", {})),
                inference=dict(item.get("inference", {})),
                registry=where,
            )
        )
    names = [e.name for e in entries]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise WeightsError(f"weights registry {where}: names listed twice: {', '.join(duplicates)}")
    return entries


def load_registry() -> dict[str, WeightsEntry]:
    """Every known entry by name: the shipped registry, then each file named by ``MEDSWIN_WEIGHTS_REGISTRY``."""
    text = resources.files("medswin.weights").joinpath("registry.json").read_text(encoding="utf-8")
    entries = {e.name: e for e in _parse(text, "<shipped>")}
    for part in os.environ.get(REGISTRY_ENV, "").split(os.pathsep):
        if not part.strip():
            continue
        path = Path(part).expanduser()
        try:
            extra = path.read_text(encoding="utf-8")
        except OSError as error:
            raise WeightsError(
                f"{path}: cannot read the weights registry named by {REGISTRY_ENV} ({error.strerror})"
            ) from None
        entries.update({e.name: e for e in _parse(extra, str(path))})
    return entries


def list_weights() -> list[WeightsEntry]:
    """All entries, sorted by name."""
    registry = load_registry()
    return [registry[name] for name in sorted(registry)]


def find_weights(name: str) -> WeightsEntry | None:
    """The entry called ``name``, or ``None``."""
    return load_registry().get(name)


def get_weights(name: str) -> WeightsEntry:
    """The entry called ``name``; unknown names get a "did you mean" and the list."""
    registry = load_registry()
    if name not in registry:
        close = difflib.get_close_matches(name, registry, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise WeightsError(
            f"no published weights called {name!r}.{hint} Known: {', '.join(sorted(registry))} "
            "(medswin weights list)"
        )
    return registry[name]
