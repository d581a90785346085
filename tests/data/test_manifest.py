"""Dataset descriptions and datalists: schema validation, normalisation, path resolution, folds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medswin.data.manifest import (
    DatasetInfo,
    load_datalist,
    load_dataset_info,
    parse_datalist,
)
from medswin.errors import ManifestError
from medswin.io.formats import dataset_case_id

MSD_SPLEEN = {
    "name": "Spleen",
    "description": "Spleen Segmentation",
    "reference": "Memorial Sloan Kettering Cancer Center",
    "licence": "CC-BY-SA 4.0",
    "release": "1.0 06/08/2018",
    "tensorImageSize": "3D",
    "modality": {"0": "CT"},
    "labels": {"0": "background", "1": "spleen"},
    "numTraining": 2,
    "numTest": 1,
    "training": [
        {"image": "./imagesTr/spleen_2.nii.gz", "label": "./labelsTr/spleen_2.nii.gz"},
        {"image": "./imagesTr/spleen_3.nii.gz", "label": "./labelsTr/spleen_3.nii.gz"},
    ],
    "test": ["./imagesTs/spleen_1.nii.gz"],
}


def test_msd_dataset_json_is_a_dataset_description_and_a_datalist(tmp_path: Path) -> None:
    path = tmp_path / "dataset.json"
    path.write_text(json.dumps(MSD_SPLEEN))
    info = load_dataset_info(path)
    assert info.channels == ["CT"] and info.labels == {0: "background", 1: "spleen"}
    assert info.licence == "CC-BY-SA 4.0"
    datalist = load_datalist(path, tmp_path / ".." / tmp_path.name)
    assert [e.case_id for e in datalist.training] == ["spleen_2", "spleen_3"]
    assert datalist.training[0].images == (tmp_path / "imagesTr" / "spleen_2.nii.gz",)
    assert datalist.training[0].label == tmp_path / "labelsTr" / "spleen_2.nii.gz"
    assert [e.case_id for e in datalist.test] == ["spleen_1"] and datalist.test[0].label is None
    assert datalist.info is not None and datalist.info.name == "Spleen"


def test_nnunet_labels_and_regions_are_normalised() -> None:
    info = DatasetInfo.from_dict(
        {
            "name": "BraTS",
            "channel_names": {"0": "t1", "1": "t1ce"},
            "labels": {
                "background": 0,
                "whole tumor": [1, 2, 3],
                "tumor core": [2, 3],
                "enhancing tumor": [3],
            },
            "regions_class_order": [1, 2, 3],
        }
    )
    assert info.channels == ["t1", "t1ce"]
    assert [(r.name, r.labels) for r in info.regions] == [
        ("whole tumor", (1, 2, 3)),
        ("tumor core", (2, 3)),
        ("enhancing tumor", (3,)),
    ]
    assert info.labels[0] == "background" and info.labels[3] == "enhancing tumor"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"name": "x", "labels": {"0": "background"}}, "modality"),
        ({"name": "x", "modality": {"0": "CT"}, "labels": {"1": "liver"}}, "background"),
        ({"name": "x", "modality": {"0": "CT"}, "labels": {"0": "background", "liver": 1}}, "mix"),
        ({"name": "x", "modality": {"1": "CT"}, "labels": {"0": "background"}}, "channel indices"),
        (
            {
                "name": "x",
                "modality": {"0": "CT"},
                "labels": {"0": "background"},
                "regions": [{"name": "r", "labels": [2]}],
            },
            "does not declare",
        ),
    ],
)
def test_invalid_dataset_descriptions_are_refused(document: dict, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        DatasetInfo.from_dict(document, source="dataset.json")


def test_datalist_schema_errors_name_the_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"training": [{"image": "a.nii.gz"}]}))
    with pytest.raises(ManifestError, match=r"bad\.json.*training/0.*label"):
        load_datalist(path)
    path.write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        load_datalist(path)
    with pytest.raises(ManifestError, match="no such file"):
        load_datalist(tmp_path / "missing.json")


def test_multichannel_cases_folds_and_split(tmp_path: Path) -> None:
    document = {
        "training": [
            {
                "image": [f"c{i}/t1.nii.gz", f"c{i}/t2.nii.gz"],
                "label": f"c{i}/seg.nii.gz",
                "fold": i % 2,
                "case": f"c{i}",
            }
            for i in range(4)
        ]
    }
    datalist = parse_datalist(document, tmp_path)
    assert datalist.folds == [0, 1]
    train, val = datalist.split(1)
    assert [e.case_id for e in train] == ["c0", "c2"] and [e.case_id for e in val] == ["c1", "c3"]
    assert val[0].images == (tmp_path / "c1" / "t1.nii.gz", tmp_path / "c1" / "t2.nii.gz")
    with pytest.raises(ManifestError, match="no training case is in fold 5"):
        datalist.split(5)
    no_folds = parse_datalist({"training": [{"image": "a.nii.gz", "label": "b.nii.gz"}]}, tmp_path)
    with pytest.raises(ManifestError, match="have no 'fold'"):
        no_folds.split(0)


def test_missing_files_are_listed_with_the_data_root(tmp_path: Path) -> None:
    (tmp_path / "a.nii.gz").write_bytes(b"x")
    path = tmp_path / "list.json"
    path.write_text(json.dumps({"training": [{"image": "a.nii.gz", "label": "a_seg.nii.gz"}]}))
    with pytest.raises(
        ManifestError, match=r"(?s)1 file\(s\) listed but not found.*a_seg\.nii\.gz.*--data-root"
    ):
        load_datalist(path, check_files=True)


def test_duplicate_and_overlapping_cases_are_refused(tmp_path: Path) -> None:
    twice = {
        "training": [
            {"image": "a.nii.gz", "label": "a.nii.gz"},
            {"image": "x/a.nii.gz", "label": "x/a.nii.gz"},
        ]
    }
    with pytest.raises(ManifestError, match="listed twice"):
        parse_datalist(twice, tmp_path)
    both = {
        "training": [{"image": "a.nii.gz", "label": "la.nii.gz"}],
        "validation": [{"image": "a.nii.gz", "label": "la.nii.gz"}],
    }
    with pytest.raises(ManifestError, match="both training and validation"):
        parse_datalist(both, tmp_path)


@pytest.mark.parametrize(
    ("name", "case"),
    [
        ("imagesTr/liver_12_0000.nii.gz", "liver_12"),
        ("labelsTr/liver_12.nii.gz", "liver_12"),
        ("BraTS2021_00000_seg.nii.gz", "BraTS2021_00000"),
        ("BraTS-GLI-00000-000-seg.nii.gz", "BraTS-GLI-00000-000"),
        ("ISIC_0000000_segmentation.png", "ISIC_0000000"),
        ("img0001.nii.gz", "img0001"),
    ],
)
def test_case_ids_come_from_file_names(name: str, case: str) -> None:
    assert dataset_case_id(name) == case
