"""``medswin submit brats2023|brats2024``: BraTS case folders -> flat zip the portal accepts; its validator."""

from __future__ import annotations

import csv
import shutil
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from challenge_factory import mri_channels

from medswin.challenges.brats import (
    BRATS_EDITIONS,
    SRI24_AFFINE,
    brats_remap,
    lesion_settings_for,
    validate_brats,
)
from medswin.cli.main import main
from medswin.errors import ModelCardError
from medswin.io import read_image, write_labels
from medswin.models import preset_card

MODALITIES = ("t1n", "t1c", "t2w", "t2f")


def _brats_case(root: Path, case: str, seed: int, *, skip: str | None = None, seg: bool = False) -> Path:
    folder = root / case
    for modality, image in zip(MODALITIES, mri_channels(seed), strict=True):
        if modality != skip:
            from medswin.io import write_image

            write_image(image, folder / f"{case}-{modality}.nii.gz")
    if seg:
        labels = np.zeros(image.shape, dtype=np.uint8)
        labels[12:22, 14:24, 10:18] = 2
        labels[15:19, 17:21, 12:16] = 3
        labels[16:18, 18:20, 13:15] = 1
        write_labels(labels, folder / f"{case}-seg.nii.gz", reference=image)
    return folder


def test_submit_packs_uint8_labels_on_each_case_grid_and_reports_a_missing_sequence(
    tmp_path: Path, brats_checkpoint: Path, capsys
) -> None:
    inputs = tmp_path / "ValidationData"
    _brats_case(inputs, "BraTS-GLI-00001-000", 1, seg=True)
    _brats_case(inputs, "BraTS-GLI-00002-000", 2)
    _brats_case(inputs, "BraTS-GLI-00003-000", 3, skip="t2w")
    out = tmp_path / "submission"
    argv = ["submit", "brats2023", "-i", str(inputs), "-o", str(out), "-m", str(brats_checkpoint), "--score"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "BraTS-GLI-00003-000-t2w.nii.gz: no such file" in err
    assert "BraTS-GLI-00003-000: missing: an input case has no prediction" in err
    assert "writing submission.incomplete.zip, not submission.zip" in err
    assert not (out / "submission.zip").exists()

    with zipfile.ZipFile(out / "submission.incomplete.zip") as archive:
        assert sorted(archive.namelist()) == ["BraTS-GLI-00001-000.nii.gz", "BraTS-GLI-00002-000.nii.gz"]
    for case in ("BraTS-GLI-00001-000", "BraTS-GLI-00002-000"):
        written = out / "predictions" / f"{case}.nii.gz"
        assert nib.load(written).get_data_dtype() == np.uint8
        labels = read_image(written, kind="label")
        assert labels.same_grid(read_image(inputs / case / f"{case}-t1n.nii.gz"), atol_mm=1e-5)
        assert set(np.unique(labels.array)) <= {0, 1, 2, 3}
    with open(out / "metrics.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert {(r["case"], r["label"]) for r in rows} == {("BraTS-GLI-00001-000", r) for r in ("WT", "TC", "ET")}
    assert all("lesion_dice" in r for r in rows)


def test_the_portal_checks_on_a_hand_made_zip(tmp_path: Path) -> None:
    folder = tmp_path / "upload"
    folder.mkdir()
    sri = nib.Nifti1Image(np.zeros((240, 240, 155), dtype=np.uint8), SRI24_AFFINE)

    def save(name: str, data: np.ndarray, affine: np.ndarray = SRI24_AFFINE) -> None:
        nib.save(nib.Nifti1Image(data, affine), folder / name)

    nib.save(sri, folder / "BraTS-GLI-00001-000.nii.gz")
    save("BraTS-GLI-00002-000.nii.gz", np.zeros((240, 240, 155), dtype=np.float32))
    wrong_labels = np.zeros((240, 240, 155), dtype=np.uint8)
    wrong_labels[100:110, 100:110, 70:80] = 4  # legacy ET, or 2024's RC: not a 2023 label
    save("BraTS-GLI-00003-000.nii.gz", wrong_labels)
    save("BraTS-GLI-00004-000.nii.gz", np.zeros((182, 218, 182), dtype=np.uint8), np.eye(4))
    save("BraTS-SSA-00001-000.nii.gz", np.zeros((240, 240, 155), dtype=np.uint8))
    (folder / "notes.txt").write_text("our team")
    (folder / "__MACOSX").mkdir()
    (folder / "__MACOSX" / "._BraTS-GLI-00001-000.nii.gz").write_bytes(b"resource fork")
    archive = shutil.make_archive(str(tmp_path / "upload"), "zip", folder)

    report = validate_brats(archive, BRATS_EDITIONS["brats2023"])
    problems = {str(p) for p in report.problems}
    assert problems == {
        "BraTS-GLI-00002-000: voxel type float32 (expected uint8)",
        "BraTS-GLI-00003-000: label value(s) [4] outside the allowed [0, 1, 2, 3]",
        "BraTS-GLI-00004-000: shape 182x218x182 (expected 240x240x155)",
        "BraTS-SSA-00001-000.nii.gz: duplicate case id 00001-000 (also BraTS-GLI-00001-000.nii.gz)",
        "notes.txt: not a prediction: names must end in NNNNN-NNN.nii.gz (e.g. BraTS-GLI-00001-000.nii.gz)",
    }
    edition_2024 = {str(p) for p in validate_brats(archive, BRATS_EDITIONS["brats2024"]).problems}
    assert not any("00003" in p or "00004" in p for p in edition_2024)  # RC and the post-op grid are 2024's


def test_validate_cli_against_the_input_grid(tmp_path: Path, capsys) -> None:
    inputs = tmp_path / "inputs"
    _brats_case(inputs, "BraTS-MET-00010-000", 4)
    _brats_case(inputs, "BraTS-MET-00011-000", 5)
    reference = read_image(inputs / "BraTS-MET-00010-000" / "BraTS-MET-00010-000-t1n.nii.gz")
    shifted = reference.with_array(np.zeros((1, *reference.shape), dtype=np.uint8), kind="label")
    shifted.origin = tuple(np.asarray(shifted.origin) + 1.0)
    write_labels(shifted, tmp_path / "sub" / "BraTS-MET-00010-000.nii.gz")
    code = main(["submit", "brats2023", "--validate", str(tmp_path / "sub"), "--images", str(inputs)])
    assert code == 1
    err = capsys.readouterr().err
    assert "BraTS-MET-00010-000: not on the input image's grid (origin" in err
    assert "BraTS-MET-00011-000: missing: an input case has no prediction" in err


def test_each_sub_challenge_is_scored_with_its_own_lesion_settings() -> None:
    brats2023, brats2024 = BRATS_EDITIONS["brats2023"], BRATS_EDITIONS["brats2024"]
    assert lesion_settings_for("BraTS-MEN-00004-000", brats2023) == "BraTS-MEN-2023"
    assert lesion_settings_for("BraTS-MET-00101-000", brats2023) == "BraTS-MET-2023"
    assert lesion_settings_for("BraTS-GLI-02000-100", brats2024) == "BraTS-GLI-2024"
    assert lesion_settings_for("BraTS-MEN-00004-000", brats2024) == "BraTS-GLI-2024"  # no 2024 MEN settings
    assert lesion_settings_for("case_17", brats2023) == "BraTS-GLI-2023"


def test_card_labels_map_onto_each_edition_by_name() -> None:
    card = preset_card("swin_unetr_brats21")
    assert brats_remap(card, BRATS_EDITIONS["brats2023"]) == {}
    legacy = card.replace(
        labels={0: "background", 1: "NCR", 2: "ED", 4: "ET"},
        regions=[],
        activation="softmax",
        config={**card.config, "out_channels": 5},
    )
    assert brats_remap(legacy, BRATS_EDITIONS["brats2023"]) == {4: 3}
    cavity = card.replace(labels={**card.labels, 4: "RC (resection cavity)"})
    with pytest.raises(ModelCardError, match="has no BraTS 2023 counterpart"):
        brats_remap(cavity, BRATS_EDITIONS["brats2023"])
    assert brats_remap(cavity, BRATS_EDITIONS["brats2024"]) == {}
