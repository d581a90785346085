"""build_manifest: datalists from nnU-Net/MSD folders, image/label pairs and BraTS-style case folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medswin.data.builder import assign_folds, build_manifest, detect_layout
from medswin.data.manifest import parse_datalist
from medswin.data.phantom import make_ct_phantom
from medswin.data.phantom_dataset import write_phantom_dataset
from medswin.errors import ManifestError
from medswin.io import write_image

SHAPE = (12, 10, 8)


def _case(seed: int, orientation: str = "LPS"):
    return make_ct_phantom(shape=SHAPE, spacing=(2.0, 2.0, 3.0), orientation=orientation, seed=seed)


def _nnunet_two_channel(folder: Path, n: int) -> None:
    for i in range(n):
        case = _case(i, ("LPS", "RAS", "oblique")[i % 3])
        write_image(case.image, folder / "imagesTr" / f"c{i:03d}_0000.nii.gz")
        write_image(
            case.image.with_array(case.image.array * 0.5), folder / "imagesTr" / f"c{i:03d}_0001.nii.gz"
        )
        write_image(case.labels, folder / "labelsTr" / f"c{i:03d}.nii.gz")
    (folder / "dataset.json").write_text(
        json.dumps(
            {
                "name": "Two",
                "channel_names": {"0": "CT", "1": "CT_half"},
                "labels": {
                    "background": 0,
                    "liver": 1,
                    "spleen": 2,
                    "kidney_right": 3,
                    "kidney_left": 4,
                    "vertebra": 5,
                },
                "file_ending": ".nii.gz",
            }
        )
    )


def test_nnunet_layout_groups_channel_files_and_assigns_folds(tmp_path: Path) -> None:
    _nnunet_two_channel(tmp_path, 5)
    case = _case(9)
    write_image(case.image, tmp_path / "imagesTs" / "t000_0000.nii.gz")
    write_image(case.image, tmp_path / "imagesTs" / "t000_0001.nii.gz")
    document = build_manifest(tmp_path, folds=2, seed=3)
    assert document["name"] == "Two" and document["modality"] == {"0": "CT", "1": "CT_half"}
    assert document["numFolds"] == 2
    first = document["training"][0]
    assert first == {
        "case": "c000",
        "image": ["imagesTr/c000_0000.nii.gz", "imagesTr/c000_0001.nii.gz"],
        "label": "labelsTr/c000.nii.gz",
        "fold": first["fold"],
    }
    assert sorted(e["fold"] for e in document["training"]) == [0, 0, 0, 1, 1]
    assert document["test"] == [
        {"case": "t000", "image": ["imagesTs/t000_0000.nii.gz", "imagesTs/t000_0001.nii.gz"]}
    ]
    datalist = parse_datalist(document, tmp_path)
    assert datalist.info is not None and datalist.info.labels[2] == "spleen"
    datalist.check_files()


def test_msd_layout_without_channel_suffix(tmp_path: Path) -> None:
    write_phantom_dataset(tmp_path, [1, 2, 3], shape=SHAPE, spacing=(3.0, 3.0, 4.0))
    for name in ("phantom_00001", "phantom_00002", "phantom_00003"):  # MSD names: no _0000 suffix
        (tmp_path / "imagesTr" / f"{name}_0000.nii.gz").rename(tmp_path / "imagesTr" / f"{name}.nii.gz")
    document = build_manifest(tmp_path, folds=0)
    assert [e["image"] for e in document["training"]] == [
        f"imagesTr/phantom_0000{i}.nii.gz" for i in (1, 2, 3)
    ]
    assert "fold" not in document["training"][0] and "numFolds" not in document


def test_geometry_mismatch_names_the_case_and_the_difference(tmp_path: Path) -> None:
    write_phantom_dataset(tmp_path, [1, 2], shape=SHAPE, spacing=(3.0, 3.0, 4.0))
    label = _case(2).labels
    shifted = type(label)(
        label.array, label.spacing, (label.origin[0] + 5.0, *label.origin[1:]), label.direction, "label"
    )
    write_image(shifted, tmp_path / "labelsTr" / "phantom_00002.nii.gz")
    with pytest.raises(
        ManifestError,
        match=r"case phantom_00002: label .*phantom_00002\.nii\.gz does not match image .*origin",
    ):
        build_manifest(tmp_path, folds=0)
    assert build_manifest(tmp_path, folds=0, check_geometry=False)["training"][1]["case"] == "phantom_00002"


def test_channel_files_on_different_grids_are_refused(tmp_path: Path) -> None:
    _nnunet_two_channel(tmp_path, 2)
    other = make_ct_phantom(shape=(12, 10, 9), spacing=(2.0, 2.0, 3.0), seed=1)
    write_image(other.image, tmp_path / "imagesTr" / "c001_0001.nii.gz")
    with pytest.raises(
        ManifestError, match=r"case c001: channel file .*c001_0001\.nii\.gz is not on the grid .*shape"
    ):
        build_manifest(tmp_path, folds=0)


def test_missing_label_and_missing_channel_are_refused(tmp_path: Path) -> None:
    _nnunet_two_channel(tmp_path, 3)
    (tmp_path / "labelsTr" / "c001.nii.gz").unlink()
    with pytest.raises(ManifestError, match=r"1 training case\(s\) have no label.*c001.*labelsTr/c001"):
        build_manifest(tmp_path)
    _nnunet_two_channel(tmp_path, 3)
    (tmp_path / "imagesTr" / "c002_0001.nii.gz").unlink()
    with pytest.raises(ManifestError, match=r"case 'c002' has channel files \['_0000'\]"):
        build_manifest(tmp_path)


def test_undeclared_label_values_are_refused(tmp_path: Path) -> None:
    write_phantom_dataset(tmp_path, [1, 2], shape=SHAPE, spacing=(3.0, 3.0, 4.0))
    document = json.loads((tmp_path / "dataset.json").read_text())
    del document["labels"]["5"]
    (tmp_path / "dataset.json").write_text(json.dumps(document))
    with pytest.raises(ManifestError, match=r"label value\(s\) \[5\] occur in the label files"):
        build_manifest(tmp_path, folds=0)


def test_pairs_layout(tmp_path: Path) -> None:
    for i in range(3):
        case = _case(i)
        write_image(case.image, tmp_path / "images" / f"img{i}.nii.gz")
        write_image(case.labels, tmp_path / "labels" / (f"img{i}.nii.gz" if i else f"img{i}_seg.nii.gz"))
    assert detect_layout(tmp_path) == "pairs"
    document = build_manifest(tmp_path, folds=3)
    assert [(e["case"], e["label"]) for e in document["training"]] == [
        ("img0", "labels/img0_seg.nii.gz"),
        ("img1", "labels/img1.nii.gz"),
        ("img2", "labels/img2.nii.gz"),
    ]
    write_image(_case(7).image, tmp_path / "images" / "img7.nii.gz")
    with pytest.raises(ManifestError, match="no label of the same name.*img7"):
        build_manifest(tmp_path)


def test_brats_case_folders_in_the_requested_channel_order(tmp_path: Path) -> None:
    for i in range(2):
        case = _case(i)
        folder = tmp_path / f"BraTS-GLI-0000{i}-000"
        for k, channel in enumerate(("t1c", "t1n", "t2f", "t2w")):
            write_image(
                case.image.with_array(case.image.array + k), folder / f"{folder.name}-{channel}.nii.gz"
            )
        write_image(
            case.labels.with_array(np.minimum(case.labels.array, 3)), folder / f"{folder.name}-seg.nii.gz"
        )
    document = build_manifest(tmp_path, folds=0, channels=["t2f", "t1c", "t1n", "t2w"])
    first = document["training"][0]
    assert first["case"] == "BraTS-GLI-00000-000"
    assert [Path(p).name.split("-")[-1] for p in first["image"]] == [
        "t2f.nii.gz",
        "t1c.nii.gz",
        "t1n.nii.gz",
        "t2w.nii.gz",
    ]
    assert first["label"].endswith("-seg.nii.gz")
    assert document["modality"] == {"0": "t2f", "1": "t1c", "2": "t1n", "3": "t2w"}
    with pytest.raises(ManifestError, match="differ from the expected channels"):
        build_manifest(tmp_path, folds=0, channels=["flair", "t1", "t1ce", "t2"])


def test_unknown_layout_and_fold_rules(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("nothing here")
    with pytest.raises(ManifestError, match="no known layout"):
        build_manifest(tmp_path)
    folds = assign_folds([f"c{i}" for i in range(11)], 5, seed=1)
    assert sorted(np.bincount(list(folds.values())).tolist()) == [2, 2, 2, 2, 3]
    assert assign_folds([f"c{i}" for i in range(11)], 5, seed=1) == folds
    with pytest.raises(ManifestError, match="only 3 training case"):
        assign_folds(["a", "b", "c"], 5)
