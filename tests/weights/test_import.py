"""``medswin weights import``: files fetched elsewhere (air-gapped sites) and MONAI bundles, no network."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from weights_factory import Fixtures, Site, bundle_zip_bytes, saved, tiny_net

from medswin.cli.main import main
from medswin.data.phantom import make_ct_phantom
from medswin.io import read_image, write_image
from medswin.models import read_checkpoint_card


def test_a_published_file_fetched_elsewhere_is_checked_then_cached(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MEDSWIN_OFFLINE", "1")
    wrong = tmp_path / "model_swin_unetr_btcv_segmentation_v1.pt"
    wrong.write_bytes(site.fixtures.btcv)  # not the bundle's bytes
    assert main(["weights", "import", str(wrong), "--as", "swin_unetr_btcv_bundle"]) == 2
    err = capsys.readouterr().err
    assert "bytes, but" in err and "are published; nothing was cached" in err  # the size gives it away first
    assert wrong.is_file()  # the user's own file is never deleted
    assert not (site.home / "weights" / "swin_unetr_btcv_bundle.safetensors").exists()

    right = tmp_path / "fetched" / "model_swin_unetr_btcv_segmentation_v1.pt"
    right.parent.mkdir()
    right.write_bytes(site.fixtures.bundle)
    argv = ["weights", "import", str(right), "--as", "swin_unetr_btcv_bundle"]
    assert main([*argv, "--legacy-merging", "no"]) == 2  # contradicting the registry is refused
    assert "contradicts the registry" in capsys.readouterr().err
    assert main(argv) == 0
    path = Path(capsys.readouterr().out.split(": ", 1)[1].strip())
    card = read_checkpoint_card(path)
    assert card.config["legacy_merging"] is True and "imported by hand" in card.provenance["weights_url"]
    assert main(argv) == 2 and "--force" in capsys.readouterr().err
    assert site.server.requests == []


def _ct(tmp_path: Path) -> Path:
    case = make_ct_phantom(shape=(40, 36, 24), spacing=(1.2, 0.9, 2.5), orientation="RAS", seed=6)
    return write_image(case.image, tmp_path / "ct.nii.gz", dtype=np.int16)


def test_a_bundle_zip_brings_its_own_card(
    fixtures: Fixtures, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "swin_unetr_btcv_segmentation_v0.5.6.zip"
    bundle.write_bytes(fixtures.bundle_zip)
    # unknown weights: the bundle's monai_version (what its configs were checked with) is shown, not used
    assert main(["weights", "import", str(bundle)]) == 2
    err = capsys.readouterr().err
    assert "monai_version 1.4.0" in err and "--legacy-merging yes" in err and "not necessarily" in err
    assert main(["weights", "import", str(bundle), "--legacy-merging", "yes"]) == 0
    name, path = capsys.readouterr().out.strip().split(": ", 1)
    assert name == "swin_unetr_btcv_segmentation"  # the bundle's folder name
    card = read_checkpoint_card(Path(path))
    assert (
        card.labels[3] == "Left Kideny" and card.labels[13] == "Left adrenal gland" and len(card.labels) == 14
    )
    assert card.orientation == "RAS" and card.spacing == (1.5, 1.5, 2.0)
    assert card.intensity == {
        "type": "window",
        "clip": True,
        "a_min": -175.0,
        "a_max": 250.0,
        "b_min": 0.0,
        "b_max": 1.0,
    }
    assert card.roi_size == (64, 32, 32) and card.overlap == 0.5 and card.config["feature_size"] == 12
    assert (
        card.config["legacy_merging"] is True and "--legacy-merging yes" in card.provenance["legacy_merging"]
    )
    assert card.provenance["monai_version"] == "1.4.0"
    assert card.provenance["license"] == "Apache-2.0 (the bundle's LICENSE)"
    assert "mean_dice 0.82" in card.provenance["published_score"]
    # the name now runs (offline, from the cache)
    out = tmp_path / "out"
    assert main(["-q", "predict", "-i", str(_ct(tmp_path)), "-o", str(out), "-m", name]) == 0
    assert read_image(out / "ct.nii.gz", kind="label").array.max() < 14


def test_a_bundle_folder_of_monai_15_and_bundle_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights = saved(tiny_net(9, in_channels=1, out_channels=14).state_dict())
    with zipfile.ZipFile(io.BytesIO(bundle_zip_bytes(weights, monai_version="1.5.0"))) as archive:
        archive.extractall(tmp_path)
    folder = tmp_path / "swin_unetr_btcv_segmentation"
    # a bundle edited to say monai_version 1.5.0 no longer turns legacy merging off silently
    assert main(["weights", "import", str(folder), "--as", "zoo_new"]) == 2
    assert "monai_version 1.5.0" in capsys.readouterr().err
    assert main(["weights", "import", str(folder), "--as", "zoo_new", "--legacy-merging", "no"]) == 0
    card = read_checkpoint_card(Path(capsys.readouterr().out.strip().split(": ", 1)[1]))
    assert card.id == "zoo_new" and card.config["legacy_merging"] is False

    inference = folder / "configs" / "inference.json"
    inference.write_text(inference.read_text().replace('"overlap": 0.5', '"overlap": "@overlap"'))
    assert main(["weights", "import", str(folder), "--as", "zoo_expr"]) == 2
    assert "inferer.overlap is the expression '@overlap'" in capsys.readouterr().err
    (folder / "models" / "model.pt").unlink()
    inference.write_text(inference.read_text().replace('"@overlap"', "0.5"))
    assert main(["weights", "import", str(folder), "--as", "zoo_nomodel"]) == 2
    assert "the bundle has no models/model.pt" in capsys.readouterr().err
    loose = tmp_path / "loose.pt"
    loose.write_bytes(weights)
    assert main(["weights", "import", str(loose)]) == 2
    assert "--as NAME" in capsys.readouterr().err
