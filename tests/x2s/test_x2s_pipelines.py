"""The Swin-X2S pipelines: the official recipe in every dataset's YAML, and one recipe run end to end
at tiny size (DRRs -> train -> predict the held-out fold -> Dice/HD95/ASSD/morphometry table)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from x2s_factory import tiny_card

from medswin.cli.main import main
from medswin.training.config import load_pipeline

PIPELINES = Path(__file__).parents[2] / "pipelines" / "train"
RECIPES = sorted(PIPELINES.glob("x2s_*_swin_x2s_base.yaml"))


def test_every_dataset_has_the_official_recipe() -> None:
    assert len(RECIPES) == 9
    for path in RECIPES:
        settings = load_pipeline(path).settings
        dataset = path.stem.removeprefix("x2s_").removesuffix("_swin_x2s_base")
        assert settings["model"]["card"] == f"swin_x2s_base_{dataset}"
        assert (settings["optimizer"]["lr"], settings["optimizer"]["weight_decay"]) == (3e-5, 0.5)
        assert (settings["scheduler"]["warmup_epochs"], settings["training"]["epochs"]) == (20, 250)
        assert settings["training"]["max_grad_norm"] == 1.0 and settings["training"]["val_every"] == 5
        assert settings["loss"]["mutual_weight"] == 1.0 and settings["loss"]["include_background"]
        assert settings["augmentation"]["view_shift"]["divisors"] == [20, 20, 50]
        assert settings["model"]["init_from"]["key_map"] == "swin_x2s_imagenet"


def test_femur_recipe_end_to_end_at_tiny_size(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """The TotalSeg-femur recipe on a tiny card; the phantom kidneys play the femurs."""
    from medswin.data.phantom_dataset import write_phantom_dataset
    from medswin.io.readers import read_image
    from medswin.io.writers import write_labels
    from medswin.models.card import preset_card

    femur = preset_card("swin_x2s_base_totalseg_femur")
    card = tiny_card(id="tiny_femur", labels=femur.labels, config={**tiny_card().config, "out_channels": 3})
    card_file = tmp_path / "tiny_femur.json"
    card_file.write_text(card.to_json())
    recipe = yaml.safe_load((PIPELINES / "x2s_totalseg_femur_swin_x2s_base.yaml").read_text())
    recipe["model"] = {"card": str(card_file), "id": "tiny_femur"}
    recipe["optimizer"]["lr"] = 2e-3  # one epoch instead of 250
    recipe["data"]["num_workers"] = 0
    pipeline = tmp_path / "recipe.yaml"
    pipeline.write_text(yaml.safe_dump(recipe))

    cts = tmp_path / "cts"
    names = write_phantom_dataset(cts, (1000, 1001, 1002, 1003), shape=(48, 48, 32), spacing=(6.0, 6.0, 8.0))
    for (
        name
    ) in names:  # kidney_right (3) -> femur_right (2), kidney_left (4) -> femur_left (1), others background
        path = cts / "labelsTr" / f"{name}.nii.gz"
        label = read_image(path, kind="label")
        remapped = np.choose(label.array.astype(np.int64), [0, 0, 0, 2, 1, 0]).astype(np.uint8)
        write_labels(label.with_array(remapped), path)
    info = json.loads((cts / "dataset.json").read_text())
    (cts / "dataset.json").write_text(
        json.dumps({**info, "labels": {str(k): v for k, v in femur.labels.items()}})
    )

    drrs, run, predicted = tmp_path / "drrs", tmp_path / "run", tmp_path / "pred"
    assert main(["x2s", "drr", "-i", str(cts), "-o", str(drrs), "-m", str(card_file), "--folds", "2"]) == 0
    train = [
        "train",
        "--pipeline",
        str(pipeline),
        "--data-root",
        str(drrs),
        "--output",
        str(run),
        "--epochs",
        "1",
    ]
    assert main(train) == 0
    model = str(run / "best.safetensors")
    datalist = str(drrs / "datalist.json")
    assert (
        main(["x2s", "predict", "--datalist", datalist, "--fold", "0", "-m", model, "-o", str(predicted)])
        == 0
    )
    held_out = sorted(p.name for p in predicted.glob("*.nii.gz"))
    assert held_out and len(held_out) == 2  # fold 0 of 2: half of the four cases
    capsys.readouterr()
    metrics = tmp_path / "metrics.csv"
    code = main(
        [
            "x2s",
            "evaluate",
            "--pred",
            str(predicted),
            "--gt",
            str(drrs / "labelsTr"),
            "-m",
            model,
            "-o",
            str(metrics),
            "--datalist",
            datalist,
            "--fold",
            "0",
        ]
    )
    table = capsys.readouterr().out
    assert code == 0 and "femur" in table, table
    summary = json.loads((tmp_path / "metrics_summary.json").read_text())
    assert summary["n_evaluated"] == 2 and summary["n_failed"] == 0
    femurs = summary["overlap"]["femur"]
    assert femurs["n_labels"] >= 2 and 0.0 <= femurs["dice"]["mean"] <= 1.0
    assert any("background" in note for note in summary["notes"])
    # the phantom kidneys have no neck or shaft: femur morphometry is counted as failed, never dropped
    morph = summary["morphometry"]["femur"]
    assert morph["n_structures"] == morph["n_ok"] + morph["n_failed"] + morph["n_reference_failed"] >= 2
    # predicting again keeps finished cases
    assert (
        main(["x2s", "predict", "--datalist", datalist, "--fold", "0", "-m", model, "-o", str(predicted)])
        == 0
    )
    assert "0 case(s) predicted, 2 already finished" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv", [["--ap", "a.dcm"], ["--datalist", "d.json", "--ap", "a.dcm", "--lateral", "b.dcm"]]
)
def test_predict_needs_one_pair_or_a_datalist(argv: list[str], tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["x2s", "predict", *argv, "-m", "demo-x2s", "-o", str(tmp_path / "o.nii.gz")]) == 2
    assert "--ap" in capsys.readouterr().err
