"""MONAI bundles (model-zoo layout) as medswin models: the card comes from the bundle's own configs.

A bundle is a folder (or a zip of one) holding ``configs/metadata.json`` (labels, modality, MONAI
version, metrics), ``configs/inference.json`` (network, preprocessing transforms, sliding-window
inferer) and ``models/model.pt``. Only literal values are read: an expression (``$...``, ``@...``)
where medswin needs a number is reported, never evaluated.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

from medswin.errors import WeightsError

__all__ = ["is_bundle", "bundle_card", "import_bundle"]

_METADATA = "configs/metadata.json"
_INFERENCE = "configs/inference.json"
_WEIGHTS = "models/model.pt"
#: network_def keys that map onto SwinUNETRConfig fields (others, e.g. img_size, are ignored).
_NETWORK_FIELDS = (
    "in_channels",
    "out_channels",
    "feature_size",
    "depths",
    "num_heads",
    "patch_size",
    "window_size",
    "spatial_dims",
    "use_v2",
    "drop_rate",
    "attn_drop_rate",
    "dropout_path_rate",
    "normalize",
    "norm_name",
    "qkv_bias",
    "mlp_ratio",
)


def _zip_root(archive: zipfile.ZipFile) -> str | None:
    """The folder inside the zip that holds ``configs/metadata.json`` ("" for the top level)."""
    for name in archive.namelist():
        if name == _METADATA:
            return ""
        if name.endswith("/" + _METADATA) and name.count("/") == 2:
            return name[: -len(_METADATA)]
    return None


def is_bundle(path: Path) -> bool:
    """True for a folder with ``configs/metadata.json`` or a zip holding one (at the top or one folder down)."""
    if path.is_dir():
        return (path / _METADATA).is_file()
    if path.suffix.lower() == ".zip" and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return _zip_root(archive) is not None
    return False


@contextmanager
def _bundle_folder(path: Path) -> Iterator[tuple[Path, str]]:
    """``(folder, bundle name)``: the folder itself, or the zip's needed files in a temporary folder.

    Each member is held to the weights size limit before and while it is written (zip bombs).
    """
    from medswin.io.archive import copy_member
    from medswin.weights.limits import limits

    if path.is_dir():
        yield path, path.name
        return
    limit = limits()
    with zipfile.ZipFile(path) as archive:
        root = _zip_root(archive)
        if root is None:
            raise WeightsError(f"{path}: no {_METADATA} inside; not a MONAI bundle")
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}."))
        try:
            for member in (_METADATA, _INFERENCE, _WEIGHTS, "LICENSE", "LICENSE.txt", "LICENSE.md"):
                try:
                    info = archive.getinfo(root + member)
                except KeyError:
                    continue  # reported by the reader that needs it, with the bundle named
                target = staging.joinpath(*PurePosixPath(member).parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                copy_member(
                    archive,
                    info,
                    target,
                    where=path,
                    max_bytes=limit.max_bytes,
                    limit_text=limit.max_text,
                    error=WeightsError,
                )
            yield staging, root.rstrip("/") or path.stem
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _read_json(folder: Path, member: str, bundle: Path) -> dict[str, Any]:
    path = folder / member
    if not path.is_file():
        raise WeightsError(f"{bundle}: the bundle has no {member}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise WeightsError(f"{bundle}: {member} is not readable JSON ({error})") from None
    if not isinstance(data, dict):
        raise WeightsError(f"{bundle}: {member} is not a JSON object")
    return data


def _literal(value: Any, what: str, bundle: Path) -> Any:
    if isinstance(value, str) and value[:1] in ("$", "@", "%"):
        raise WeightsError(
            f"{bundle}: {what} is the expression {value!r}; medswin reads literal values only and does not "
            "evaluate bundle code. Write the value into the bundle's configs/inference.json, or import the "
            "weights with a card: medswin import-checkpoint models/model.pt --card CARD.json"
        )
    return value


def _transforms(section: Any) -> list[dict[str, Any]]:
    if isinstance(section, dict):
        section = section.get("transforms", [])
    return [t for t in section if isinstance(t, dict)] if isinstance(section, list) else []


def _target(item: dict[str, Any]) -> str:
    return str(item.get("_target_", "")).rsplit(".", 1)[-1]


#: licence texts recognised by their opening words, as SPDX identifiers.
_LICENSES = (
    (("apache license", "version 2.0"), "Apache-2.0"),
    (("mit license",), "MIT"),
    (("creative commons", "attribution-noncommercial-sharealike 4.0"), "CC-BY-NC-SA-4.0"),
    (("creative commons", "attribution-noncommercial 4.0"), "CC-BY-NC-4.0"),
    (("creative commons", "attribution 4.0"), "CC-BY-4.0"),
)


def bundle_license(folder: Path) -> str:
    """The bundle's licence from its LICENSE file (an SPDX id when recognised, else its first line)."""
    path = next(
        (folder / n for n in ("LICENSE", "LICENSE.txt", "LICENSE.md") if (folder / n).is_file()), None
    )
    if path is None:
        return "not stated (the bundle has no LICENSE file)"
    text = path.read_text(encoding="utf-8", errors="replace")[:4000]
    lowered = " ".join(text.lower().split())
    for words, spdx in _LICENSES:
        if all(w in lowered for w in words):
            return f"{spdx} (the bundle's LICENSE)"
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return f"{first[:120]} (the bundle's LICENSE)" if first else "the bundle's LICENSE is empty"


def _protocol(inferer: dict[str, Any], postprocessing: Any, bundle: Path) -> dict[str, Any]:
    """The card's inference protocol from the bundle's own inferer and postprocessing (literal values).

    MONAI's ``SlidingWindowInferer`` blends with ``constant`` weights unless ``mode`` says otherwise;
    ``Invertd`` with ``nearest_interp: false`` sends the *probabilities* back through the inverse of
    the preprocessing and the argmax is taken on the input grid.
    """
    protocol: dict[str, Any] = {
        "blend": str(_literal(inferer.get("mode", "constant"), "inferer.mode", bundle)),
        "sigma_scale": float(_literal(inferer.get("sigma_scale", 0.125), "inferer.sigma_scale", bundle)),
        "resample": "labels",
    }
    if protocol["blend"] not in ("gaussian", "constant"):
        raise WeightsError(f"{bundle}: inferer.mode {protocol['blend']!r} is not gaussian or constant")
    for item in _transforms(postprocessing):
        if _target(item) in ("Invertd", "Invert"):
            nearest = _literal(item.get("nearest_interp", True), "Invertd.nearest_interp", bundle)
            protocol["resample"] = "labels" if nearest else "probabilities"
    return protocol


def bundle_card(folder: Path, name: str, bundle: Path) -> tuple[Any, dict[str, Any]]:
    """``(card, metadata)`` for the bundle unpacked in ``folder``; ``bundle`` names it in errors."""
    from medswin.models.card import ModelCard

    metadata = _read_json(folder, _METADATA, bundle)
    inference = _read_json(folder, _INFERENCE, bundle)
    network = inference.get("network_def")
    if not isinstance(network, dict) or "SwinUNETR" not in _target(network):
        target = _target(network) if isinstance(network, dict) else "none"
        raise WeightsError(
            f"{bundle}: configs/inference.json network_def is {target!r}; medswin imports SwinUNETR bundles"
        )
    config = {
        key: _literal(network[key], f"network_def.{key}", bundle) for key in _NETWORK_FIELDS if key in network
    }
    orientation = spacing = None
    intensity: dict[str, Any] = {"type": "none"}
    for item in _transforms(inference.get("preprocessing")):
        kind = _target(item)
        if kind in ("Orientationd", "Orientation"):
            orientation = str(_literal(item.get("axcodes"), "Orientationd.axcodes", bundle))
        elif kind in ("Spacingd", "Spacing"):
            spacing = [float(s) for s in _literal(item.get("pixdim"), "Spacingd.pixdim", bundle)]
        elif kind in ("ScaleIntensityRanged", "ScaleIntensityRange"):
            intensity = {"type": "window", "clip": bool(item.get("clip", False))}
            for key in ("a_min", "a_max", "b_min", "b_max"):
                intensity[key] = float(_literal(item.get(key), f"ScaleIntensityRanged.{key}", bundle))
        elif kind in ("NormalizeIntensityd", "NormalizeIntensity"):
            intensity = {
                "type": "zscore",
                "nonzero": bool(item.get("nonzero", False)),
                "channel_wise": bool(item.get("channel_wise", False)),
            }
    inferer = inference.get("inferer") if isinstance(inference.get("inferer"), dict) else {}
    roi = _literal(inferer.get("roi_size"), "inferer.roi_size", bundle)
    if not isinstance(roi, list) or not roi:
        raise WeightsError(f"{bundle}: configs/inference.json has no inferer.roi_size list")
    activations = [
        t for t in _transforms(inference.get("postprocessing")) if _target(t).startswith("Activations")
    ]
    if any(t.get("sigmoid") for t in activations):
        raise WeightsError(
            f"{bundle}: a sigmoid (region) bundle; medswin cannot tell from the bundle how regions become labels. "
            "Import the weights with a card that lists its regions: medswin import-checkpoint models/model.pt --card CARD.json"
        )
    protocol = _protocol(inferer, inference.get("postprocessing"), bundle)
    outputs = metadata.get("network_data_format", {}).get("outputs", {})
    pred = next(iter(outputs.values()), {}) if isinstance(outputs, dict) else {}
    channel_def = pred.get("channel_def") or {}
    if not channel_def:
        raise WeightsError(
            f"{bundle}: configs/metadata.json names no output channels (network_data_format.outputs)"
        )
    labels = {int(k): str(v) for k, v in channel_def.items()}
    inputs = metadata.get("network_data_format", {}).get("inputs", {})
    image = next(iter(inputs.values()), {}) if isinstance(inputs, dict) else {}
    modality = str(image.get("modality") or "CT")
    in_channels = int(config.get("in_channels", 1))
    channels = [modality] if in_channels == 1 else [str(v) for v in (image.get("channel_def") or {}).values()]
    if len(channels) != in_channels:
        channels = [f"{modality}_{i}" for i in range(in_channels)]
    metrics = metadata.get("eval_metrics") or {}
    provenance = {
        "source": f"MONAI bundle {metadata.get('name', name)} version {metadata.get('version', '?')} ({bundle.name})",
        "authors": str(metadata.get("authors", "")),
        "license": bundle_license(folder),
        "copyright": str(metadata.get("copyright", "")),
        "published_score": ", ".join(f"{k} {v}" for k, v in metrics.items()) or "none in the bundle metadata",
        "monai_version": str(metadata.get("monai_version", "not stated")),
        "intended_use": str(metadata.get("intended_use", "")),
    }
    data = {
        "id": name,
        "description": str(metadata.get("description") or metadata.get("task") or name),
        "architecture": "swin_unetr",
        "config": config,
        "modality": modality,
        "channels": channels,
        "labels": {str(k): v for k, v in labels.items()},
        "activation": "softmax",
        "preprocessing": {"orientation": orientation, "spacing": spacing, "intensity": intensity},
        "inference": {
            "roi_size": [int(s) for s in roi],
            "overlap": float(_literal(inferer.get("overlap", 0.25), "inferer.overlap", bundle)),
            **protocol,
        },
        "provenance": {k: v for k, v in provenance.items() if v},
    }
    return ModelCard.from_dict(data, source=f"{bundle} (bundle configs)"), metadata


def _cache_name(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._")
    return name or "bundle"


def import_bundle(
    source: Path, name: str | None, *, legacy_merging: str = "auto", force: bool = False
) -> Path:
    """Import a MONAI bundle (folder or zip) into the weights cache; returns the cached checkpoint.

    The card is built from the bundle's configs; the patch-merging flag from ``legacy_merging``,
    where ``auto`` reads the bundle's ``monai_version``.
    """
    from medswin.weights.cache import converted_path, model_lock, utc_timestamp
    from medswin.weights.download import file_checksums
    from medswin.weights.legacy import decide_legacy_merging, with_legacy_merging
    from medswin.weights.pulling import cached_weights, convert_file

    with _bundle_folder(source) as (folder, bundle_name):
        name = name or _cache_name(bundle_name)
        card, metadata = bundle_card(folder, name, source)
        weights = folder / _WEIGHTS
        if not weights.is_file():
            raise WeightsError(f"{source}: the bundle has no {_WEIGHTS}")
        sha256, md5 = file_checksums(weights)
        flag, why = decide_legacy_merging(
            legacy_merging,
            card,
            weights,
            checksums=(sha256, md5),
            bundle_monai_version=metadata.get("monai_version"),
        )
        provenance = {
            "weights_checksum": f"{_WEIGHTS}: sha256 {sha256}, md5 {md5}",
            "downloaded": f"imported {utc_timestamp()}",
        }
        card = with_legacy_merging(card, flag, why)
        with model_lock(name):
            if cached_weights(name) is not None and not force:
                raise WeightsError(
                    f"{name} is already in the cache ({converted_path(name)}); pass --force to replace it"
                )
            return convert_file(weights, card, name, key_map=None, partial=False, provenance=provenance)
