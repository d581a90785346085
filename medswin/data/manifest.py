"""Data manifests: dataset descriptions and datalists (Decathlon / MONAI style), validated and resolved.

Two documents, both JSON and both checked against the schemas in ``medswin/data/schemas/``:

* a **dataset description** (``dataset.json``): name, channel names, label map, optional regions
  (sets of labels trained as sigmoid channels, e.g. BraTS TC/WT/ET), licence and source. Medical
  Segmentation Decathlon files (``modality``, labels ``"1": "liver"``) and nnU-Net v2 files
  (``channel_names``, labels ``"liver": 1``) are both read;
* a **datalist**: ``training`` / ``validation`` / ``test`` case lists whose paths are relative to
  a data root, training cases optionally carrying a cross-validation ``fold``. An MSD
  ``dataset.json`` is a datalist too (its ``training`` and ``test`` lists).

Paths are resolved against ``data_root`` (default: the datalist's folder), so a manifest in the
repository describes data stored anywhere.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from medswin.errors import ManifestError, MedSwinError
from medswin.io.formats import dataset_case_id

__all__ = [
    "SCHEMAS",
    "CaseEntry",
    "DatasetInfo",
    "Datalist",
    "RegionSpec",
    "check_case_geometry",
    "load_datalist",
    "load_dataset_info",
    "load_json",
    "load_schema",
    "parse_datalist",
    "validate_document",
    "write_json",
]

log = logging.getLogger(__name__)

#: schema names -> file in ``medswin/data/schemas``.
SCHEMAS = ("dataset", "datalist", "pipeline")


# ------------------------------------------------------------------------------ schemas / json
@cache
def load_schema(name: str) -> dict[str, Any]:
    """The JSON schema ``name`` (one of :data:`SCHEMAS`)."""
    if name not in SCHEMAS:
        raise ValueError(f"unknown schema {name!r}; known: {', '.join(SCHEMAS)}")
    text = resources.files("medswin.data").joinpath("schemas", f"{name}.schema.json").read_text("utf-8")
    return json.loads(text)


def validate_document(data: Any, schema: str, source: str) -> None:
    """Raise :class:`ManifestError` naming ``source`` and the offending field unless ``data`` fits ``schema``."""
    from medswin._schema import schema_problem

    problem = schema_problem(data, load_schema(schema))
    if problem is not None:
        raise ManifestError(f"{source}: invalid {schema} document {problem}")


def load_json(path: str | Path) -> Any:
    """Parse a JSON file; a missing or malformed file raises :class:`ManifestError` naming it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(f"{path}: no such file") from None
    except OSError as error:
        raise ManifestError(f"{path}: cannot read ({error.strerror or error})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ManifestError(
            f"{path}: not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})"
        ) from None


def write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON atomically (temporary file in the same folder, then ``os.replace``)."""
    from medswin.files import write_atomic

    return write_atomic(path, json.dumps(data, indent=2) + "\n")


# ------------------------------------------------------------------------------ dataset description
@dataclass(frozen=True)
class RegionSpec:
    """A training target made of several labels (e.g. BraTS tumour core = labels 1 and 3)."""

    name: str
    labels: tuple[int, ...]


@dataclass
class DatasetInfo:
    """What a dataset holds, normalised from MSD or nnU-Net ``dataset.json`` conventions.

    Attributes:
        name: dataset name, e.g. ``"BTCV"``.
        channels: image channel names in file / channel order, e.g. ``["CT"]`` or ``["t2f", "t1c", "t1n", "t2w"]``.
        labels: label value -> structure name, including ``0``.
        regions: label sets trained as separate (sigmoid) channels, in channel order.
        licence / source / reference / description: provenance as the dataset publishes it.
    """

    name: str
    channels: list[str]
    labels: dict[int, str]
    regions: list[RegionSpec] = field(default_factory=list)
    licence: str = ""
    source: str = ""
    reference: str = ""
    description: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<dataset>") -> DatasetInfo:
        """Validate against ``dataset.schema.json`` and normalise (labels as value -> name)."""
        validate_document(data, "dataset", source)
        channel_map = data.get("channel_names") or data.get("modality")
        channels = [channel_map[k] for k in sorted(channel_map, key=int)]
        if [int(k) for k in sorted(channel_map, key=int)] != list(range(len(channels))):
            raise ManifestError(
                f"{source}: channel indices must be 0..{len(channels) - 1}, got {sorted(channel_map, key=int)}"
            )
        labels, regions = _normalise_labels(data["labels"], data.get("regions_class_order"), source)
        for item in data.get("regions", []):
            regions.append(RegionSpec(item["name"], tuple(int(v) for v in item["labels"])))
        for region in regions:
            unknown = [v for v in region.labels if v not in labels]
            if unknown:
                raise ManifestError(
                    f"{source}: region {region.name!r} uses label(s) {unknown} that 'labels' does not declare"
                )
        return cls(
            name=data["name"],
            channels=channels,
            labels=labels,
            regions=regions,
            licence=data.get("licence", data.get("license", "")),
            source=data.get("source", ""),
            reference=data.get("reference", ""),
            description=data.get("description", ""),
        )

    def to_dict(self) -> dict[str, Any]:
        """MSD-style JSON fields (``modality``, labels value -> name, ``regions`` list)."""
        data: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "reference": self.reference,
            "licence": self.licence,
            "source": self.source,
            "modality": {str(i): c for i, c in enumerate(self.channels)},
            "labels": {str(k): v for k, v in sorted(self.labels.items())},
        }
        if self.regions:
            data["regions"] = [{"name": r.name, "labels": list(r.labels)} for r in self.regions]
        return {k: v for k, v in data.items() if v != ""}


def _normalise_labels(
    raw: Mapping[str, Any], class_order: Sequence[int] | None, source: str
) -> tuple[dict[int, str], list[RegionSpec]]:
    """MSD ``{"1": "liver"}`` or nnU-Net ``{"liver": 1, "tumor core": [2, 3]}`` -> (labels, regions)."""
    values = list(raw.values())
    if all(isinstance(v, str) for v in values):  # MSD
        try:
            labels = {int(k): v for k, v in raw.items()}
        except ValueError:
            raise ManifestError(
                f'{source}: MSD-style labels need integer keys ("1": "liver"), got {list(raw)}'
            ) from None
        if 0 not in labels:
            raise ManifestError(f"{source}: labels must declare 0 (background)")
        return labels, []
    if any(isinstance(v, str) for v in values):
        raise ManifestError(
            f'{source}: labels mix the MSD form ("1": "liver") and the nnU-Net form ("liver": 1); use one'
        )
    labels = {int(v): name for name, v in raw.items() if isinstance(v, int)}
    region_items = [(name, tuple(v)) for name, v in raw.items() if isinstance(v, list)]
    regions: list[RegionSpec] = []
    if region_items:  # nnU-Net region training: region i paints regions_class_order[i]
        if class_order is None or len(class_order) != len(region_items):
            raise ManifestError(
                f"{source}: nnU-Net region labels need regions_class_order with one value per region"
            )
        for (name, members), painted in zip(region_items, class_order, strict=True):
            labels.setdefault(int(painted), name)
            regions.append(RegionSpec(name, tuple(int(m) for m in members)))
        for region in regions:
            for member in region.labels:
                labels.setdefault(member, f"label_{member}")
    if 0 not in labels:
        raise ManifestError(f"{source}: labels must declare background as 0")
    return labels, regions


def load_dataset_info(path: str | Path) -> DatasetInfo:
    """Read and validate a ``dataset.json``."""
    path = Path(path)
    return DatasetInfo.from_dict(load_json(path), source=str(path))


# ------------------------------------------------------------------------------ datalist
@dataclass(frozen=True)
class CaseEntry:
    """One case of a datalist with resolved paths.

    Attributes:
        case_id: a name for logs and outputs (no patient data; from the file name or the ``case`` field).
        images: channel files in channel order (one file may itself hold several channels).
        label: label map file, or ``None`` for test cases.
        fold: cross-validation fold, when the datalist assigns one.
    """

    case_id: str
    images: tuple[Path, ...]
    label: Path | None = None
    fold: int | None = None

    def files(self) -> list[Path]:
        return [*self.images, *([self.label] if self.label is not None else [])]


@dataclass
class Datalist:
    """Resolved case lists of a datalist file.

    Attributes:
        path: the datalist file (``None`` when built in memory).
        root: folder the relative paths were resolved against.
        training / validation / test: the cases.
        info: the dataset description embedded in the file (MSD style), if it has one.
    """

    path: Path | None
    root: Path
    training: list[CaseEntry]
    validation: list[CaseEntry] = field(default_factory=list)
    test: list[CaseEntry] = field(default_factory=list)
    info: DatasetInfo | None = None

    @property
    def folds(self) -> list[int]:
        """Fold numbers present in the training list."""
        return sorted({e.fold for e in self.training if e.fold is not None})

    def split(self, fold: int | None = None) -> tuple[list[CaseEntry], list[CaseEntry]]:
        """``(train, validation)`` cases.

        Without ``fold``: the ``training`` and ``validation`` lists as written. With ``fold = k``:
        training cases of every other fold for training and those of fold ``k`` for validation
        (the ``validation`` list, if any, is not used).
        """
        where = self.path or "<datalist>"
        if fold is None:
            return list(self.training), list(self.validation)
        unassigned = [e.case_id for e in self.training if e.fold is None]
        if unassigned:
            raise ManifestError(
                f"{where}: fold {fold} was asked for but {len(unassigned)} training case(s) have no 'fold' "
                f"(e.g. {', '.join(unassigned[:3])}); add folds with 'medswin manifest FOLDER --folds 5'"
            )
        if fold not in self.folds:
            raise ManifestError(f"{where}: no training case is in fold {fold}; folds present: {self.folds}")
        if self.validation:
            log.info("%s: fold %d chosen; the separate validation list is not used", where, fold)
        return [e for e in self.training if e.fold != fold], [e for e in self.training if e.fold == fold]

    def missing_files(self) -> list[Path]:
        """Every referenced file (or DICOM folder) that does not exist."""
        seen: list[Path] = []
        for entry in (*self.training, *self.validation, *self.test):
            seen.extend(p for p in entry.files() if not p.exists())
        return seen

    def check_files(self) -> None:
        """Raise :class:`ManifestError` listing missing files (first ten) and the root they were looked for in."""
        missing = self.missing_files()
        if missing:
            shown = "\n  ".join(str(p) for p in missing[:10])
            more = f"\n  ... and {len(missing) - 10} more" if len(missing) > 10 else ""
            raise ManifestError(
                f"{self.path or '<datalist>'}: {len(missing)} file(s) listed but not found under data root "
                f"{self.root}:\n  {shown}{more}\nPass the folder holding the data with --data-root."
            )


def _resolve(root: Path, relative: str, where: str) -> Path:
    if not relative.strip():
        raise ManifestError(f"{where}: empty path")
    path = Path(relative).expanduser()
    return path if path.is_absolute() else Path(_normalise(root / path))


def _normalise(path: Path) -> str:
    import os

    return os.path.normpath(str(path))


def _entries(items: Iterable[Any], root: Path, section: str, source: str) -> list[CaseEntry]:
    entries: list[CaseEntry] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        where = f"{source}: {section}[{index}]"
        if isinstance(item, str):
            item = {"image": item}
        images = item["image"] if isinstance(item["image"], list) else [item["image"]]
        resolved = tuple(_resolve(root, p, where) for p in images)
        label = _resolve(root, item["label"], where) if "label" in item else None
        case_id = item.get("case") or dataset_case_id(label if label is not None else resolved[0])
        if case_id in seen:
            raise ManifestError(
                f"{where}: case {case_id!r} is listed twice in {section} (also at index {seen[case_id]})"
            )
        seen[case_id] = index
        entries.append(CaseEntry(case_id, resolved, label, item.get("fold")))
    return entries


def parse_datalist(
    data: Mapping[str, Any], root: str | Path, *, source: str = "<datalist>", path: Path | None = None
) -> Datalist:
    """Validate a datalist document and resolve its paths against ``root``."""
    validate_document(data, "datalist", source)
    root = Path(root).expanduser()
    info = None
    if "labels" in data and ("modality" in data or "channel_names" in data) and "name" in data:
        info = DatasetInfo.from_dict(
            {k: v for k, v in data.items() if k not in ("training", "validation", "test", "numFolds")}, source
        )
    datalist = Datalist(
        path=path,
        root=root,
        training=_entries(data.get("training", []), root, "training", source),
        validation=_entries(data.get("validation", []), root, "validation", source),
        test=_entries(data.get("test", []), root, "test", source),
        info=info,
    )
    overlap = {e.case_id for e in datalist.training} & {e.case_id for e in datalist.validation}
    if overlap:
        raise ManifestError(
            f"{source}: case(s) {', '.join(sorted(overlap)[:5])} are in both training and validation; "
            "a case must be in one list only"
        )
    return datalist


def load_datalist(
    path: str | Path, data_root: str | Path | None = None, *, check_files: bool = False
) -> Datalist:
    """Read a datalist (or MSD ``dataset.json``) and resolve its paths.

    Args:
        path: the JSON file.
        data_root: folder the relative paths refer to (default: the file's folder).
        check_files: raise :class:`ManifestError` if any listed file is missing.
    """
    path = Path(path)
    root = Path(data_root) if data_root is not None else path.parent
    if data_root is not None and not root.is_dir():
        raise ManifestError(f"data root {root}: no such folder")
    datalist = parse_datalist(load_json(path), root, source=str(path), path=path)
    if check_files:
        datalist.check_files()
    return datalist


# ------------------------------------------------------------------------------ geometry
def check_case_geometry(entry: CaseEntry, expected_channels: int | None = None) -> tuple[int, list[int]]:
    """Read a case's files and check every channel and the label share one grid.

    Returns ``(channels, label values present)``. Raises :class:`ManifestError` naming the files and
    the first geometry difference (shape, spacing, origin or direction), a label file with more than
    one channel, or a channel count different from ``expected_channels``.
    """
    import numpy as np

    from medswin.io.readers import read_image

    try:
        images = [read_image(p) for p in entry.images]
        label = read_image(entry.label, kind="label") if entry.label is not None else None
    except MedSwinError as error:
        raise ManifestError(f"case {entry.case_id}: {error}") from None
    first = images[0]
    for path, image in zip(entry.images[1:], images[1:], strict=True):
        difference = image.grid_difference(first)
        if difference is not None:
            raise ManifestError(
                f"case {entry.case_id}: channel file {path} is not on the grid of {entry.images[0]} ({difference}); "
                "resample the channels onto one grid (e.g. with SimpleITK or 'medswin convert')"
            )
    channels = sum(i.num_channels for i in images)
    if expected_channels is not None and channels != expected_channels:
        raise ManifestError(
            f"case {entry.case_id}: {channels} image channel(s) in {', '.join(map(str, entry.images))}, "
            f"but the dataset declares {expected_channels}"
        )
    values: list[int] = []
    if label is not None:
        if label.num_channels != 1:
            raise ManifestError(
                f"case {entry.case_id}: label {entry.label} has {label.num_channels} channels; a label map has one"
            )
        difference = label.grid_difference(first)
        if difference is not None:
            raise ManifestError(
                f"case {entry.case_id}: label {entry.label} does not match image {entry.images[0]} ({difference}); "
                "image and label must share shape, spacing, origin and direction"
            )
        values = [int(v) for v in np.unique(label.array)]
    return channels, values
