"""Model cards: everything inference needs to know about a trained model, as validated data.

A card names the architecture and its config, the input channels, the labels (or, for sigmoid
region models such as BraTS, how region channels are painted into labels), the preprocessing
(orientation, spacing, intensity), and the sliding-window settings. A checkpoint carries its card,
so a prediction is reproducible from one file. Cards are JSON documents checked against
``card.schema.json``.
"""

from __future__ import annotations

import copy
import json
import logging
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from medswin.errors import ModelCardError

__all__ = [
    "DEFAULT_INTENDED_USE",
    "ModelCard",
    "Region",
    "load_card",
    "list_presets",
    "has_preset",
    "preset_card",
]

CARD_SCHEMA_VERSION = 1
#: the largest sliding window a card may ask for: beyond it every case fails allocating the window
#: (100000^3 asked for 4e15 bytes), so the card is refused when it loads instead.
MAX_ROI_VOXELS = 512**3
#: what a card that does not state its intended use is for.
DEFAULT_INTENDED_USE = "research use only: not a medical device, not for diagnosis or treatment"


def _schema() -> dict[str, Any]:
    text = resources.files("medswin.models").joinpath("card.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


@dataclass(frozen=True)
class Region:
    """A sigmoid output channel painted into the label map as ``label`` (in list order)."""

    name: str
    channel: int
    label: int


@dataclass
class ModelCard:
    """A trained model described as data (see ``card.schema.json`` for every field).

    Attributes:
        id: unique name, e.g. ``"swin_unetr_btcv"``; ``-m <id>`` selects it.
        architecture: registry name, e.g. ``"swin_unetr"``.
        config: keyword overrides for :func:`medswin.models.create_model`.
        channels: input channel names in model order, e.g. ``["CT"]`` or ``["t1n", "t1c", "t2w", "t2f"]``.
        labels: label value -> structure name, including ``0: "background"``.
        activation: ``"softmax"`` (one channel per label, argmax) or ``"sigmoid"`` (region channels).
        regions: for sigmoid models, how channels become labels (painted in order, later wins).
        orientation: axis code the model expects (``"RAS"``), or ``None`` to keep the input's.
        spacing: target voxel size in mm, or ``None`` to keep the input's.
        intensity: ``{"type": "window", "a_min", "a_max", "b_min", "b_max", "clip"}``,
            ``{"type": "zscore", "nonzero", "channel_wise"}`` or ``{"type": "none"}``.
        roi_size: sliding-window size in voxels (on the model grid).
        overlap: recommended sliding-window overlap in [0, 1).
        slice_axis: for 2D models run on volumes, the array axis to slice along (``2`` = axial).
        blend / sigma_scale: how overlapping windows are blended, as the model's source ran it:
            ``"gaussian"`` (sigma ``sigma_scale`` x window) or ``"constant"`` (MONAI's default).
        resample: what goes back to the input grid: ``"labels"`` (argmax on the model grid, nearest
            neighbour back) or ``"probabilities"`` (activation on the model grid, probabilities
            resampled linearly, then argmax/threshold on the input grid, as MONAI's ``Invertd``
            with ``nearest_interp: false`` does).
        threshold: probability from which a sigmoid region channel counts as inside.
        radiographs: for biplanar X-ray models (Swin-X2S) the DRR geometry they were trained
            with and how a radiograph becomes a view (``cube_size``, ``resize``, source
            distances; see :func:`medswin.transforms.radiograph.drr_geometry`); ``None`` otherwise.
        colors: label value -> RGB 0..255, for viewers and DICOM-SEG.
        provenance: free text fields: ``source``, ``training``, ``reference``, ``license``
            (``published_score`` and ``weights`` for published weights).
        body_region: the part of the body the model was trained on (``"abdomen"``, ``"brain"``);
            "" when the card does not say.
        intended_use: what the model is for; "" means :data:`DEFAULT_INTENDED_USE`.
        volume_ranges_ml: label name -> ``(low, high)`` plausible adult volume in mL, for the
            quality checks (:mod:`medswin.qc`); a structure without a range is not judged by volume.
        volume_ranges_source: where the ranges come from (a citation, or how they were measured).
    """

    id: str
    architecture: str
    config: dict[str, Any]
    channels: list[str]
    labels: dict[int, str]
    activation: str = "softmax"
    regions: list[Region] = field(default_factory=list)
    orientation: str | None = "RAS"
    spacing: tuple[float, ...] | None = None
    intensity: dict[str, Any] = field(default_factory=lambda: {"type": "none"})
    roi_size: tuple[int, ...] = (96, 96, 96)
    overlap: float = 0.5
    slice_axis: int | None = None
    blend: str = "gaussian"
    sigma_scale: float = 0.125
    resample: str = "labels"
    threshold: float = 0.5
    modality: str = "CT"
    description: str = ""
    radiographs: dict[str, Any] | None = None
    colors: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    provenance: dict[str, str] = field(default_factory=dict)
    body_region: str = ""
    intended_use: str = ""
    volume_ranges_ml: dict[str, tuple[float, float]] = field(default_factory=dict)
    volume_ranges_source: str = ""

    # ------------------------------------------------------------- (de)serialise
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (label keys as strings), the form stored in checkpoints."""
        return {
            "schema_version": CARD_SCHEMA_VERSION,
            "id": self.id,
            "description": self.description,
            "architecture": self.architecture,
            "config": copy.deepcopy(self.config),
            "modality": self.modality,
            "channels": list(self.channels),
            "labels": {str(k): v for k, v in sorted(self.labels.items())},
            "activation": self.activation,
            "regions": [{"name": r.name, "channel": r.channel, "label": r.label} for r in self.regions],
            "preprocessing": {
                "orientation": self.orientation,
                "spacing": list(self.spacing) if self.spacing is not None else None,
                "intensity": copy.deepcopy(self.intensity),
            },
            "inference": {
                "roi_size": list(self.roi_size),
                "overlap": self.overlap,
                "slice_axis": self.slice_axis,
                "blend": self.blend,
                "sigma_scale": self.sigma_scale,
                "resample": self.resample,
                "threshold": self.threshold,
            },
            "radiographs": copy.deepcopy(self.radiographs),
            "colors": {str(k): list(v) for k, v in sorted(self.colors.items())},
            "provenance": dict(self.provenance),
            # written only when set, so cards and checkpoints saved before these fields read the same
            **({"body_region": self.body_region} if self.body_region else {}),
            **({"intended_use": self.intended_use} if self.intended_use else {}),
            **(
                {
                    "volume_ranges_ml": {k: list(v) for k, v in self.volume_ranges_ml.items()},
                    "volume_ranges_source": self.volume_ranges_source,
                }
                if self.volume_ranges_ml
                else {}
            ),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<card>") -> ModelCard:
        """Validate against the schema and build; ``source`` names the file in error messages."""
        from medswin._schema import schema_problem

        problem = schema_problem(data, _schema())
        if problem is not None:
            raise ModelCardError(f"{source}: invalid model card {problem}")
        pre = data.get("preprocessing", {})
        inf = data.get("inference", {})
        card = cls(
            id=data["id"],
            architecture=data["architecture"],
            config=dict(data.get("config", {})),
            channels=list(data["channels"]),
            labels={int(k): v for k, v in data["labels"].items()},
            activation=data.get("activation", "softmax"),
            regions=[Region(r["name"], int(r["channel"]), int(r["label"])) for r in data.get("regions", [])],
            orientation=pre.get("orientation", "RAS"),
            spacing=tuple(float(s) for s in pre["spacing"]) if pre.get("spacing") else None,
            intensity=dict(pre.get("intensity", {"type": "none"})),
            roi_size=tuple(int(s) for s in inf.get("roi_size", (96, 96, 96))),
            overlap=float(inf.get("overlap", 0.5)),
            slice_axis=inf.get("slice_axis"),
            blend=inf.get("blend", "gaussian"),
            sigma_scale=float(inf.get("sigma_scale", 0.125)),
            resample=inf.get("resample", "labels"),
            threshold=float(inf.get("threshold", 0.5)),
            modality=data.get("modality", "CT"),
            description=data.get("description", ""),
            radiographs=copy.deepcopy(data.get("radiographs")),
            colors={int(k): tuple(int(c) for c in v) for k, v in data.get("colors", {}).items()},
            provenance=dict(data.get("provenance", {})),
            body_region=data.get("body_region", ""),
            intended_use=data.get("intended_use", ""),
            volume_ranges_ml={
                str(k): (float(v[0]), float(v[1])) for k, v in data.get("volume_ranges_ml", {}).items()
            },
            volume_ranges_source=data.get("volume_ranges_source", ""),
        )
        card.check(source)
        return card

    @classmethod
    def from_json(cls, text: str, source: str = "<card>") -> ModelCard:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ModelCardError(f"{source}: not valid JSON ({error})") from None
        return cls.from_dict(data, source)

    # ------------------------------------------------------------------ checks
    def check(self, source: str = "<card>") -> None:
        """Cross-field rules the schema cannot express."""
        if 0 not in self.labels:
            raise ModelCardError(f"{source}: labels must include 0 (background)")
        if self.blend not in ("gaussian", "constant"):
            raise ModelCardError(
                f"{source}: inference.blend must be gaussian or constant, not {self.blend!r}"
            )
        if self.resample not in ("labels", "probabilities"):
            raise ModelCardError(
                f"{source}: inference.resample must be labels or probabilities, not {self.resample!r}"
            )
        if not 0 < self.threshold < 1 or not 0 < self.sigma_scale <= 1:
            raise ModelCardError(f"{source}: inference.threshold must be in (0, 1) and sigma_scale in (0, 1]")
        if self.activation == "sigmoid" and not self.regions:
            raise ModelCardError(
                f"{source}: a sigmoid card needs 'regions' saying how channels become labels"
            )
        for region in self.regions:
            if region.label not in self.labels:
                raise ModelCardError(
                    f"{source}: region {region.name!r} paints label {region.label}, not in labels"
                )
        if self.radiographs is not None:
            roi = self.roi_size
            if len(self.channels) != 2 or len(roi) != 3 or roi[0] != roi[1]:
                raise ModelCardError(
                    f"{source}: a radiographs card takes two views (channels, got {self.channels}) and makes a "
                    f"3D volume with X == Y (roi_size, got {list(roi)})"
                )
            size = self.config.get("img_size")
            if size is not None and tuple(int(s) for s in size) != tuple(roi):
                raise ModelCardError(
                    f"{source}: config.img_size {list(size)} must equal roi_size {list(roi)} (the output volume)"
                )
            if max(roi) > int(self.radiographs["cube_size"]):
                raise ModelCardError(
                    f"{source}: roi_size {list(roi)} does not fit radiographs.cube_size {self.radiographs['cube_size']}"
                )
        names = set(self.labels.values())
        for name, (low, high) in self.volume_ranges_ml.items():
            if name not in names:  # a card edited down to fewer labels: that range is simply unused
                logging.getLogger(__name__).warning(
                    "%s: volume_ranges_ml names %r, which is not one of the card's labels; it is not used",
                    source,
                    name,
                )
            if not 0 <= low < high:
                raise ModelCardError(
                    f"{source}: volume_ranges_ml {name!r} must be [low, high] with 0 <= low < high, got "
                    f"[{low:g}, {high:g}]"
                )
        if self.volume_ranges_ml and not self.volume_ranges_source.strip():
            raise ModelCardError(
                f"{source}: volume_ranges_ml needs volume_ranges_source saying where the ranges come from"
            )
        if math.prod(self.roi_size) > MAX_ROI_VOXELS:
            raise ModelCardError(
                f"{source}: roi_size {list(self.roi_size)} is {math.prod(self.roi_size):,} voxels per window; "
                f"at most {MAX_ROI_VOXELS:,} (512^3) are accepted"
            )
        if self.spacing is not None and len(self.spacing) != len(self.roi_size) and self.slice_axis is None:
            raise ModelCardError(
                f"{source}: spacing {self.spacing} and roi_size {self.roi_size} differ in length"
            )

    @property
    def num_classes(self) -> int:
        """Output channels of the network: labels for softmax cards, regions for sigmoid cards."""
        return len(self.regions) if self.activation == "sigmoid" else len(self.labels)

    @property
    def spatial_dims(self) -> int:
        return len(self.roi_size)

    def summary(self) -> dict[str, str]:
        """What the model is for, in words a user reads before running it (one line per field).

        Keys: ``model``, ``modality``, ``body region``, ``labels``, ``training data``, ``intended use``,
        ``published score``; a field the card does not fill reads "not stated".
        """
        unknown = "not stated"
        provenance = self.provenance
        score = provenance.get("published_score") or provenance.get("reference") or unknown
        training = provenance.get("training_data") or provenance.get("training") or unknown
        return {
            "model": f"{self.id}: {self.description}" if self.description else self.id,
            "modality": self.modality or unknown,
            "body region": self.body_region or unknown,
            "labels": ", ".join(self.label_names().values()) or unknown,
            "training data": training,
            "intended use": self.intended_use or DEFAULT_INTENDED_USE,
            "published score": score,
        }

    def label_names(self) -> dict[int, str]:
        """Foreground labels only (value -> name)."""
        return {k: v for k, v in self.labels.items() if k != 0}

    def create_model(self, **overrides: Any) -> Any:
        """Build the (untrained) network this card describes."""
        from medswin.models.registry import create_model

        return create_model(self.architecture, **{**self.config, **overrides})

    def replace(self, **changes: Any) -> ModelCard:
        """A copy with some fields changed, re-validated."""
        data = copy.deepcopy(self.__dict__)
        data.update(changes)
        if "labels" in changes and "volume_ranges_ml" not in changes:  # ranges follow the labels kept
            names = set(data["labels"].values())
            data["volume_ranges_ml"] = {
                k: v for k, v in data.get("volume_ranges_ml", {}).items() if k in names
            }
        card = ModelCard(**data)
        card.check(card.id)
        return card


def list_presets() -> list[str]:
    """Ids of the cards shipped in ``medswin/models/cards/``."""
    folder = resources.files("medswin.models").joinpath("cards")
    return sorted(p.name[: -len(".json")] for p in folder.iterdir() if p.name.endswith(".json"))


#: size variants a family's Base preset also describes: ``<family>_<size>_<dataset>`` is the card
#: ``<family>_base_<dataset>`` with architecture ``<family>_<size>`` (labels and geometry kept in one file).
SIZE_VARIANTS: dict[str, tuple[str, ...]] = {"swin_x2s": ("tiny", "small", "large")}


def _size_variant(card_id: str, presets: list[str]) -> ModelCard | None:
    """The card of a size variant of a Base preset (e.g. ``swin_x2s_tiny_ctpelvic1k``), or None."""
    for family, sizes in SIZE_VARIANTS.items():
        for size in sizes:
            prefix = f"{family}_{size}_"
            base_id = f"{family}_base_" + card_id[len(prefix) :]
            if card_id.startswith(prefix) and base_id in presets:
                base = preset_card(base_id)
                description = base.description.replace("-Base", f"-{size.capitalize()}", 1).replace(
                    base_id, card_id
                )
                return base.replace(
                    id=card_id,
                    architecture=f"{family}_{size}",
                    description=f"{description} (size variant of {base_id}; same labels and geometry)",
                )
    return None


def has_preset(card_id: str) -> bool:
    """True when :func:`preset_card` knows ``card_id`` (a shipped card or a size variant of one)."""
    presets = list_presets()
    return card_id in presets or _size_variant(card_id, presets) is not None


def preset_card(card_id: str) -> ModelCard:
    """A shipped card by id (e.g. ``"swin_unetr_btcv"``), or a size variant of one (:data:`SIZE_VARIANTS`)."""
    import difflib

    presets = list_presets()
    if card_id not in presets:
        variant = _size_variant(card_id, presets)
        if variant is not None:
            return variant
        close = difflib.get_close_matches(card_id, presets, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ModelCardError(f"no shipped model card {card_id!r}.{hint} Shipped cards: {', '.join(presets)}")
    text = resources.files("medswin.models").joinpath("cards", f"{card_id}.json").read_text(encoding="utf-8")
    return ModelCard.from_json(text, source=f"preset card {card_id}")


def load_card(path: str | Path) -> ModelCard:
    """Read a card from a JSON file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ModelCardError(f"{path}: cannot read model card ({error.strerror})") from None
    return ModelCard.from_json(text, source=str(path))
