"""Every manifest in data_manifests/ fits its schema; published splits have the documented sizes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medswin.data.manifest import DatasetInfo, load_json, parse_datalist, validate_document

MANIFESTS = Path(__file__).resolve().parents[2] / "data_manifests"
JSON_FILES = sorted(MANIFESTS.rglob("*.json"))
LIST_KEYS = ("training", "validation", "test")


def test_the_manifest_folder_is_populated() -> None:
    names = {p.relative_to(MANIFESTS).as_posix() for p in JSON_FILES}
    for expected in (
        "btcv/dataset.json",
        "btcv/swin_unetr_btcv_dataset_0.json",
        "synapse/dataset.json",
        "brats2021/dataset.json",
        "brats2023/dataset.json",
        "isic2018/dataset.json",
        *(f"msd/Task{n:02d}_{t}/dataset.json" for n, t in enumerate(
            ["BrainTumour", "Heart", "Liver", "Hippocampus", "Prostate", "Lung", "Pancreas", "HepaticVessel", "Spleen", "Colon"], 1
        )),
    ):  # fmt: skip
        assert expected in names


@pytest.mark.parametrize("path", JSON_FILES, ids=lambda p: p.relative_to(MANIFESTS).as_posix())
def test_manifest_fits_its_schema(path: Path) -> None:
    data = load_json(path)
    is_list = any(key in data for key in LIST_KEYS)
    is_description = "labels" in data
    assert is_list or is_description, f"{path}: neither a dataset description nor a datalist"
    if is_description:
        info = DatasetInfo.from_dict(
            {k: v for k, v in data.items() if k not in (*LIST_KEYS, "numFolds")}, str(path)
        )
        assert info.labels[0] == "background" and info.channels
        assert data.get("licence") and data.get("source") or path.name != "dataset.json"
    if is_list:
        validate_document(data, "datalist", str(path))
        datalist = parse_datalist(data, Path("/data"), source=str(path))
        for entry in (*datalist.training, *datalist.validation, *datalist.test):
            for file in entry.files():  # relative paths only: the data lives wherever the user keeps it
                assert file.is_relative_to("/data"), f"{path}: {file} is not relative to the data root"
    if path.name == "dataset.json" and not is_list:
        readme = path.parent / "README.md"
        assert readme.is_file() or (path.parent.parent / "README.md").is_file()


def test_btcv_split_is_the_24_6_20_split() -> None:
    datalist = parse_datalist(load_json(MANIFESTS / "btcv/swin_unetr_btcv_dataset_0.json"), Path("/data"))
    assert (len(datalist.training), len(datalist.validation), len(datalist.test)) == (24, 6, 20)
    assert [e.case_id for e in datalist.validation] == [f"label00{i}" for i in range(35, 41)]
    assert datalist.info is not None and len(datalist.info.labels) == 14


def test_synapse_split_is_18_train_12_test_from_the_btcv_labelled_scans() -> None:
    data = load_json(MANIFESTS / "synapse/synapse_btcv_split.json")
    train = {e["case"] for e in data["training"]}
    test = {e["case"] for e in data["validation"]}
    assert len(train) == 18 and len(test) == 12 and not train & test
    assert "case0001" in test and "case0038" in test and "case0040" in train
    labels = json.loads((MANIFESTS / "synapse/dataset.json").read_text())["labels"]
    assert labels["1"] == "aorta" and labels["8"] == "stomach" and len(labels) == 9


def test_brats_regions_match_their_label_conventions() -> None:
    brats21 = DatasetInfo.from_dict(load_json(MANIFESTS / "brats2021/dataset.json"))
    assert sorted(brats21.labels) == [0, 1, 2, 4]
    assert {r.name: r.labels for r in brats21.regions} == {"TC": (1, 4), "WT": (1, 2, 4), "ET": (4,)}
    brats23 = DatasetInfo.from_dict(load_json(MANIFESTS / "brats2023/dataset.json"))
    assert brats23.channels == ["t2f", "t1c", "t1n", "t2w"] and sorted(brats23.labels) == [0, 1, 2, 3]
    assert {r.name: r.labels for r in brats23.regions} == {"TC": (1, 3), "WT": (1, 2, 3), "ET": (3,)}
