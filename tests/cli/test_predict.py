"""``medswin predict``: end to end from a NIfTI file to OUT_DIR/<case>.nii.gz on the input's grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from medswin.cli.main import main
from medswin.data.phantom import make_ct_phantom
from medswin.io import read_image, write_image
from medswin.io.formats import case_name
from medswin.models import preset_card, save_checkpoint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    card = preset_card("swin_unetr_btcv")
    card = card.replace(
        id="btcv_tiny",
        config={**card.config, "feature_size": 12, "legacy_merging": False},
        roi_size=(64, 32, 32),
        spacing=(2.0, 2.0, 3.0),
    )
    torch.manual_seed(0)
    return save_checkpoint(card.create_model(), card, tmp_path_factory.mktemp("model") / "tiny.safetensors")


@pytest.mark.parametrize("orientation", ["oblique", "LPS"])
def test_predict_writes_case_on_the_input_grid(
    tmp_path: Path, checkpoint: Path, orientation: str, capsys: pytest.CaptureFixture[str]
) -> None:
    case = make_ct_phantom(shape=(40, 36, 24), spacing=(1.2, 0.9, 2.5), orientation=orientation, seed=1)
    source = write_image(case.image, tmp_path / "patient_ct.nii.gz", dtype=np.int16)
    out = tmp_path / "out"
    code = main(
        ["-q", "predict", "-i", str(source), "-o", str(out), "-m", str(checkpoint), "--precision", "bf16"]
    )
    assert code == 0
    written = out / "patient_ct.nii.gz"
    # the labels, the case record and the run summary; no temporary left behind
    assert sorted(p.name for p in out.iterdir()) == ["patient_ct.json", "patient_ct.nii.gz", "summary.csv"]
    labels = read_image(written, kind="label")
    image = read_image(source)
    assert labels.same_grid(image, atol_mm=1e-5), labels.grid_difference(image)
    assert labels.array.dtype == np.uint8 and labels.array.max() < 14
    assert capsys.readouterr().out == ""  # -q: nothing printed


def test_existing_output_is_kept_without_overwrite(tmp_path: Path, checkpoint: Path) -> None:
    case = make_ct_phantom(shape=(40, 36, 24), spacing=(1.2, 0.9, 2.5), seed=2)
    source = write_image(case.image, tmp_path / "ct.nii.gz")
    out = tmp_path / "out"
    out.mkdir()
    (out / "ct.nii.gz").write_bytes(b"keep me")
    argv = ["predict", "-i", str(source), "-o", str(out), "-m", str(checkpoint), "--overlap", "0.25"]
    assert main(argv) == 1  # the case fails: a file medswin did not make is never replaced silently
    assert (out / "ct.nii.gz").read_bytes() == b"keep me"
    assert main([*argv, "--overwrite", "--tta", "--keep-largest", "--case", "renamed"]) == 0
    assert (out / "renamed.nii.gz").is_file()


def test_usage_errors(tmp_path: Path, checkpoint: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = make_ct_phantom(shape=(40, 36, 24), spacing=(1.2, 0.9, 2.5), seed=2)
    source = write_image(case.image, tmp_path / "ct.nii.gz")
    out = tmp_path / "out"
    assert main(["predict", "-i", str(source), "-o", str(out), "-m", "swin_unetr_btcv"]) == 2
    assert "no weights" in capsys.readouterr().err
    assert (
        main(["predict", "-i", str(tmp_path / "missing.nii.gz"), "-o", str(out), "-m", str(checkpoint)]) == 2
    )
    assert "no such file" in capsys.readouterr().err
    assert main(["predict", "-i", str(source), "-i", str(source), "-o", str(out), "-m", str(checkpoint)]) == 2
    assert "takes 1 (CT)" in capsys.readouterr().err
    assert (
        main(["predict", "-i", str(source), "-o", str(out), "-m", str(checkpoint), "--overlap", "1.5"]) == 2
    )
    assert not out.exists()


def test_case_names() -> None:
    assert case_name("/data/case_001.nii.gz") == "case_001"
    assert case_name("scan.v2.MHA") == "scan.v2"
    assert case_name("/dicom/series_dir") == "series_dir"
    assert case_name("study.zip") == "study"


def test_a_folder_named_like_the_model_does_not_shadow_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ``swin_unetr_btcv`` folder in the working directory: ``-m swin_unetr_btcv`` is still the preset
    (which says its weights are missing), not "no such checkpoint file"."""
    case = make_ct_phantom(shape=(24, 20, 12), spacing=(1.2, 0.9, 2.5), seed=2)
    source = write_image(case.image, tmp_path / "ct.nii.gz")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "swin_unetr_btcv").mkdir()
    assert main(["predict", "-i", str(source), "-o", str(tmp_path / "out"), "-m", "swin_unetr_btcv"]) == 2
    err = capsys.readouterr().err
    assert "no weights" in err and "checkpoint file" not in err
