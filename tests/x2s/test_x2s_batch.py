"""``medswin x2s predict --datalist`` runs through the batch runner: a record per case on the model
grid, resume, a changed view orientation redoes the case, a bad case is reported and the rest go on."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from x2s_factory import phantom_pair, tiny_card, tiny_network, write_dx

from medswin.cli.main import main
from medswin.inference.x2s import X2SPredictor
from medswin.io.readers import read_image
from medswin.models.checkpoints import save_checkpoint

CARD = tiny_card()


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_checkpoint(
        tiny_network(CARD, seed=4), CARD, tmp_path_factory.mktemp("m") / "tiny.safetensors"
    )


def _datalist(folder: Path, seeds: tuple[int, ...]) -> Path:
    """A biplanar datalist of DX pairs (test cases), one per phantom seed."""
    test = []
    for seed in seeds:
        pair = phantom_pair(CARD, seed=seed)
        ap = write_dx(
            folder / f"c{seed}_ap.dcm", pair.ap.array[0], pair.ap.spacing[0], orientation=("L", "F")
        )
        lat = write_dx(
            folder / f"c{seed}_lat.dcm",
            pair.lateral.array[0],
            pair.lateral.spacing[0],
            orientation=("P", "F"),
        )
        test.append({"image": [ap.name, lat.name], "case": f"c{seed}"})
    path = folder / "datalist.json"
    path.write_text(json.dumps({"training": [], "test": test}))
    return path


def _predict(datalist: Path, model: Path, out: Path, *extra: str) -> int:
    return main(["x2s", "predict", "--datalist", str(datalist), "-m", str(model), "-o", str(out), *extra])


def test_datalist_cases_get_records_on_the_model_grid_and_resume(model: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    datalist = _datalist(inputs, (1010, 1011))
    assert _predict(datalist, model, out) == 0
    assert "2 case(s) predicted" in capsys.readouterr().out

    expected = X2SPredictor(str(model)).predict(inputs / "c1010_ap.dcm", inputs / "c1010_lat.dcm")
    written = read_image(out / "c1010.nii.gz", kind="label")
    np.testing.assert_array_equal(written.array, expected.labels.array)
    np.testing.assert_allclose(written.lps_affine, expected.labels.lps_affine, atol=1e-5)
    record = json.loads((out / "c1010.json").read_text())
    assert record["model"] == CARD.id and record["windows"] == 1
    assert record["inputs"] == ["c1010_ap.dcm", "c1010_lat.dcm"]
    assert record["settings"]["view_orientations"] == [None, None]
    assert record["shape"] == list(CARD.roi_size)
    rows = {row["case"]: row for row in csv.DictReader((out / "summary.csv").open())}
    assert set(rows) == {"c1010", "c1011"} and {r["status"] for r in rows.values()} == {"done"}
    volume = record["labels"][CARD.labels[1]]["volume_ml"]
    assert float(rows["c1010"][f"{CARD.labels[1]}_ml"]) == pytest.approx(volume, rel=1e-6)

    # finished cases are kept; a changed view orientation changes the output, so it redoes them
    stamp = (out / "c1010.nii.gz").stat().st_mtime_ns
    assert _predict(datalist, model, out) == 0
    assert "0 case(s) predicted, 2 already finished" in capsys.readouterr().out
    assert (out / "c1010.nii.gz").stat().st_mtime_ns == stamp
    assert _predict(datalist, model, out, "--ap-orientation", "R\\F") == 0
    assert "2 case(s) predicted" in capsys.readouterr().out
    assert json.loads((out / "c1010.json").read_text())["settings"]["view_orientations"] == ["R\\F", None]


def test_a_bad_case_is_reported_and_the_others_are_written(model: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    datalist = _datalist(inputs, (1012, 1013))
    (inputs / "c1013_lat.dcm").write_bytes(b"not a radiograph")
    assert _predict(datalist, model, out) == 1
    err = capsys.readouterr().err
    assert "case c1013 failed" in err and "c1013_lat.dcm" in err
    assert (out / "c1012.nii.gz").is_file() and (out / "c1012.json").is_file()
    assert not list(out.glob("c1013*"))  # nothing partial of the failed case
    rows = {row["case"]: row for row in csv.DictReader((out / "summary.csv").open())}
    assert rows["c1013"]["status"] == "failed" and "c1013_lat.dcm" in rows["c1013"]["reason"]


def test_an_output_folder_holding_the_films_is_refused(model: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    datalist = _datalist(tmp_path, (1014,))
    assert _predict(datalist, model, tmp_path) == 2
    assert "holds" in capsys.readouterr().err
    assert not (tmp_path / "c1014.nii.gz").exists()


def test_cancel_stops_the_batch_and_leaves_no_output(model: Path, tmp_path: Path) -> None:
    from medswin.batch import Case, run_batch
    from medswin.batch.biplanar import BiplanarBatchPredictor, read_radiograph_pair

    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    _datalist(inputs, (1015, 1016))
    cases = [Case(f"c{s}", (inputs / f"c{s}_ap.dcm", inputs / f"c{s}_lat.dcm")) for s in (1015, 1016)]
    steps: list[tuple[str, int, int]] = []
    result = run_batch(
        BiplanarBatchPredictor(X2SPredictor(str(model))),
        cases,
        out,
        progress=lambda case, done, total, message: steps.append((case, done, total)),
        cancel=lambda: len(steps) >= 2,  # asked between the X-ray predictor's steps
        reader=read_radiograph_pair,
    )
    assert [o.status for o in result.outcomes] == ["failed"]  # the batch stopped after the first case
    assert "cancel" in result.outcomes[0].reason.lower()
    assert not list(out.glob("c10*"))
    assert steps[0] == ("c1015", 0, 3)
