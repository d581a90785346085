"""``medswin train`` argument handling (the training runs themselves are in tests/training/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from medswin.cli.main import build_parser, main

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines" / "train"


def test_train_is_listed_with_its_options(capsys) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    text = capsys.readouterr().out
    for option in (
        "--pipeline",
        "--output",
        "--data-root",
        "--datalist",
        "--resume",
        "--epochs",
        "--precision",
        "--init-from",
    ):
        assert option in text
    assert "torchrun --nproc_per_node" in text


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--pipeline", "missing.yaml"], "missing.yaml: no such pipeline file"),
        (
            ["--pipeline", str(PIPELINES / "btcv_swin_unetr.yaml"), "--epochs", "0"],
            "--epochs must be at least 1",
        ),
        (["--pipeline", str(PIPELINES / "brats21_swin_unetr.yaml")], "no datalist; set data.datalist"),
        (
            ["--pipeline", str(PIPELINES / "btcv_swin_unetr.yaml"), "--data-root", "/no/such/folder"],
            "no such folder",
        ),
        (
            ["--pipeline", str(PIPELINES / "demo_phantom.yaml"), "--precision", "fp16", "--device", "cpu"],
            "fp16 training needs a GPU",
        ),
    ],
)
def test_setup_errors_exit_2_with_a_message(
    tmp_path: Path, capsys, arguments: list[str], message: str
) -> None:
    output = tmp_path / "run"
    assert main(["train", *arguments, "--output", str(output)]) == 2
    assert message in capsys.readouterr().err
    assert not (output / "best.safetensors").exists()


def test_btcv_recipe_reports_missing_data_under_the_data_root(tmp_path: Path, capsys) -> None:
    code = main(
        [
            "train",
            "--pipeline",
            str(PIPELINES / "btcv_swin_unetr.yaml"),
            "--data-root",
            str(tmp_path),
            "--output",
            str(tmp_path / "run"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "file(s) listed but not found under data root" in err and "imagesTr/img0001.nii.gz" in err
