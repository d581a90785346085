"""``medswin x2s drr`` makes the DRRs the official Swin-X2S program makes (issue 21).

How we know: (1) the official program rebuilt from the same ITK classes (``official_drr_itk``) is
the oracle on a CT with anisotropic spacing; (2) analytic cases: a dense block whose path sum
exceeds 32767 saturates, a marker at the rotation centre lands on the detector centre, an
asymmetric marker keeps its side whether the CT is stored LPS- or RAS-style.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from medswin.cli.main import main  # noqa: E402
from medswin.io.geometry import reorient  # noqa: E402
from medswin.io.image import Image  # noqa: E402
from medswin.io.readers import read_image  # noqa: E402
from medswin.io.writers import write_image  # noqa: E402
from medswin.transforms.drr import (  # noqa: E402
    DrrGeometry,
    biplanar_drr,
    official_8bit,
    official_detector,
    official_ray_sums,
)

SPACING = (1.2, 1.2, 2.0)
SHAPE = (48, 56, 40)  # LPS-stored: axes run to the patient's left, posterior, head


def _ct(marker_value: float = 1500.0) -> tuple[Image, Image]:
    """Body cylinder, a spine-like rod, and a bone marker at the patient's left, front, head end."""
    i, j, k = np.meshgrid(*[np.arange(n) for n in SHAPE], indexing="ij")
    hu = np.full(SHAPE, -1000, dtype=np.int16)
    body = ((i - 23.5) / 20) ** 2 + ((j - 27.5) / 24) ** 2 < 1
    hu[body] = 40
    hu[body & ((i - 23.5) ** 2 + (j - 40) ** 2 < 16)] = 700
    labels = np.zeros(SHAPE, dtype=np.uint8)
    labels[36:42, 8:14, 28:36] = 1  # left (high i), anterior (low j), superior (high k)
    hu[labels == 1] = int(marker_value)
    origin = (-28.0, -33.0, -40.0)
    ct = Image(hu[None].astype(np.float32), SPACING, origin, np.eye(3), "intensity", {})
    return ct, Image(labels[None], SPACING, origin, np.eye(3), "label", {})


def _dataset(folder: Path, ct: Image, labels: Image, case: str = "case_000") -> Path:
    write_image(ct, folder / "imagesTr" / f"{case}_0000.nii.gz")
    write_image(labels, folder / "labelsTr" / f"{case}.nii.gz")
    (folder / "dataset.json").write_text(
        json.dumps(
            {
                "name": "t",
                "channel_names": {"0": "CT"},
                "labels": {"background": 0, "marker": 1},
                "numTraining": 1,
                "file_ending": ".nii.gz",
            }
        )
    )
    return folder


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


@pytest.mark.parametrize(("view", "ry"), [("ap", 0.0), ("lateral", 90.0)])
def test_ray_sums_equal_the_official_program(view: str, ry: float) -> None:
    pytest.importorskip("itk")  # a dev dependency: the oracle is built from its classes
    import official_drr_itk as itk_ref

    ct, _ = _ct()
    volume = ct.array[0].astype(np.int16)
    reference = itk_ref.itk_official_sums(volume, SPACING, ry)
    ours = official_ray_sums(volume, SPACING, view, official_detector(SHAPE, SPACING, 160))
    stored = np.clip(np.trunc(ours), -32768, 32767)
    assert stored.shape == reference.shape
    # the same sums in float64 (ITK compensates its sum): a truncation may differ by one unit at most
    assert np.abs(stored - reference).max() <= 1
    assert np.abs(official_8bit(ours) - itk_ref.itk_official_8bit(reference)).max() <= 1 / 255 + 1e-6


def test_x2s_drr_writes_the_official_dataset_for_lps_and_ras_stored_copies(tmp_path: Path) -> None:
    pytest.importorskip("itk")  # a dev dependency: the oracle is built from its classes
    import official_drr_itk as itk_ref

    ct, labels = _ct()
    outputs = {}
    for code in ("LPS", "RAS"):
        source = _dataset(tmp_path / f"in_{code}", reorient(ct, code), reorient(labels, code))
        out = tmp_path / f"out_{code}"
        assert main(["x2s", "drr", "-i", str(source), "-o", str(out), "--folds", "0"]) == 0
        outputs[code] = out
    info = json.loads((outputs["LPS"] / "dataset.json").read_text())
    assert info["drr_geometry"]["values"] == "official" and info["drr_geometry"]["frame"] == "LPI"
    volume = ct.array[0].astype(np.int16)
    for index, (view, ry) in enumerate((("ap", 0.0), ("lateral", 90.0))):
        truth = itk_ref.itk_official_8bit(itk_ref.itk_official_sums(volume, SPACING, ry))
        for code in ("LPS", "RAS"):
            written = read_image(outputs[code] / "imagesTr" / f"case_000_000{index}.mha").array[0]
            assert written.shape == truth.shape
            assert np.abs(written - truth).max() <= 1 / 255 + 1e-6, (view, code)
            assert _ncc(written, truth) > 0.999
    lps = read_image(outputs["LPS"] / "labelsTr" / "case_000.nii.gz")
    ras = read_image(outputs["RAS"] / "labelsTr" / "case_000.nii.gz")
    # the same physical voxels; only exact nearest-neighbour ties could round to different sides
    assert (lps.array == ras.array).mean() > 0.999 and lps.orientation == "LPI"
    centres = [
        json.loads((outputs[code] / "datalist.json").read_text())["training"][0]["isocentre_lps_mm"]
        for code in ("LPS", "RAS")
    ]
    # the label grid is centred on voxel n // 2 (the program's label centre), the same point for both copies
    expected = np.asarray(ct.lps_affine @ np.append(np.asarray(SHAPE) // 2, 1.0))[:3]
    np.testing.assert_allclose(centres, [expected, expected], atol=1e-3)


def test_sums_above_32767_saturate_where_the_official_program_clamps() -> None:
    """A 3000 HU slab 16 mm thick sums to ~48000 HU·mm (clamped to 32767); a 1000 HU one to ~16000."""
    hu = np.full(SHAPE, -1000, dtype=np.int16)
    hu[4:20, 20:34, 10:30] = 3000  # 14 voxels x 1.2 mm = 16.8 mm along the AP rays
    hu[28:44, 20:34, 10:30] = 1000
    geometry = DrrGeometry()
    sums = official_ray_sums(hu, SPACING, "ap", official_detector(SHAPE, SPACING, 160), geometry)
    view = official_8bit(sums)
    dense = sums > 40000
    assert dense.sum() > 100 and np.all(view[dense] == 1.0)
    np.testing.assert_array_equal(view == 1.0, np.trunc(sums) >= 32767)  # white exactly where it clamps
    light = (sums > 15000) & (sums < 20000)
    # unclamped pixels are scaled by the clamp (32767), not by the true maximum (~50000)
    expected = np.floor(np.trunc(sums[light]) * 255.0 / 32767.0) / 255.0
    assert light.sum() > 100 and np.abs(view[light] - expected).max() <= 1 / 255 + 1e-6
    # full precision would put them at sum / true maximum instead: visibly darker
    assert np.median(view[light]) > 1.3 * np.median(sums[light] / sums.max())


def test_rotation_centre_is_voxel_n_over_2() -> None:
    """A single voxel at index n/2 projects onto the detector's centre, (columns - 1)/2, (rows - 1)/2."""
    hu = np.full(SHAPE, -1000, dtype=np.int16)
    centre = tuple(n // 2 for n in SHAPE)
    hu[centre] = 2000
    detector = official_detector(SHAPE, SPACING, 160)
    columns, rows, pixel = detector
    for view in ("ap", "lateral"):
        sums = official_ray_sums(hu, SPACING, view, detector)
        weights = sums / sums.sum()
        col = float((weights.sum(axis=1) * np.arange(columns)).sum())
        row = float((weights.sum(axis=0) * np.arange(rows)).sum())
        # bilinear spread about the exact projection is symmetric: the centroid is the projection
        assert col == pytest.approx((columns - 1) / 2, abs=0.02), view
        assert row == pytest.approx((rows - 1) / 2, abs=0.02), view
        # half a voxel away (the field of view's middle) would be visibly off: > 0.5 pixel here
        assert 0.5 * SPACING[0] * 2000 / 1800 / pixel > 0.5


def test_handedness_follows_the_frame(tmp_path: Path) -> None:
    """The left/anterior/superior marker: its label sits at X above the grid's middle in LPI, below in
    RAI; the views are written as films (patient's left at high x) in both, and a card's frame mirrors
    them back into its own handedness when they are prepared for the network."""
    from x2s_factory import tiny_card

    from medswin.transforms.radiograph import prepare_view

    ct, labels = _ct()
    lpi = biplanar_drr(ct, labels, DrrGeometry())
    rai = biplanar_drr(reorient(ct, "RAS"), reorient(labels, "RAS"), DrrGeometry(frame="RAI"))
    for drr, left_is_high in ((lpi, True), (rai, False)):
        ap = drr.ap.array[0]
        marker_col = float((ap.max(axis=1) >= 0.99 * ap.max()).nonzero()[0].mean())
        assert marker_col > (ap.shape[0] - 1) / 2  # a film: the patient's left at high x
        x = np.nonzero(drr.labels.array[0] == 1)[0].mean()  # type: ignore[union-attr]
        assert (x > (drr.labels.shape[0] - 1) / 2) == left_is_high  # type: ignore[union-attr]
        # wherever the axes point, the marker's label sits at the same place in the patient (mm)
        index = np.argwhere(drr.labels.array[0] == 1).mean(axis=0)  # type: ignore[union-attr]
        lps = drr.labels.lps_affine @ np.append(index, 1.0)  # type: ignore[union-attr]
        assert lps[0] > 0 and lps[1] < 0  # left of and in front of the volume's centre
    # RAI is LPI turned 180 degrees about the long axis (source on the other side, centre half a
    # voxel the other way): as films the two agree up to that magnification
    for view in ("ap", "lateral"):
        ours, theirs = getattr(lpi, view).array[0], getattr(rai, view).array[0]
        assert _ncc(ours, theirs) > 0.85
        assert _ncc(ours, theirs) > _ncc(ours, theirs[::-1]) + 0.05
    # prepared for an RAI card, the film is mirrored back: the network sees the program's RAI DRR
    card = tiny_card(160, radiographs={**tiny_card().radiographs, "frame": "RAI", "cube_size": 160})  # type: ignore[dict-item]
    sums = official_ray_sums(
        reorient(ct, "RAS").array[0].astype(np.int16), SPACING, "ap", official_detector(SHAPE, SPACING, 160)
    )
    prepared = prepare_view(rai.ap, "ap", card).array
    np.testing.assert_allclose(prepared, official_8bit(sums), atol=1e-6)  # a 160-voxel view: no crop


def test_a_long_ct_gives_the_official_non_square_drr_and_network_views(tmp_path: Path) -> None:
    """A CT three times longer than wide: the program's 160 x 240 DRR, then the scripts' MONAI chain
    (pad square, bicubic resize without anti-aliasing, centre crop) equals what medswin feeds the network."""
    pytest.importorskip("itk")  # a dev dependency: the oracle is built from its classes
    import official_drr_itk as itk_ref

    from medswin.models.card import preset_card
    from medswin.transforms.radiograph import prepare_view

    shape, spacing = (40, 44, 40), (1.5, 1.5, 2.5)  # extents 60, 66, 100 mm: int(2 * 100 / 66) = 3
    i, j, k = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    hu = np.full(shape, -1000, dtype=np.int16)
    body = ((i - 19.5) / 17) ** 2 + ((j - 21.5) / 19) ** 2 < 1
    hu[body] = 60
    hu[body & ((i - 19.5) ** 2 + (j - 30) ** 2 < 9)] = (
        900 + 10 * k[body & ((i - 19.5) ** 2 + (j - 30) ** 2 < 9)]
    )
    lab = np.zeros(shape, dtype=np.uint8)
    lab[(i - 19.5) ** 2 + (j - 30) ** 2 < 9] = 1
    lab[25:33, 10:16, 5:12] = 2  # left, anterior, inferior
    hu[lab == 2] = 1200
    ct = Image(hu[None].astype(np.float32), spacing, (3.0, -2.0, -60.0), np.eye(3), "intensity", {})
    labels = Image(lab[None], spacing, (3.0, -2.0, -60.0), np.eye(3), "label", {})
    source = _dataset(tmp_path / "in", ct, labels)
    out = tmp_path / "out"
    card = "swin_x2s_base_totalseg_all"
    assert main(["x2s", "drr", "-i", str(source), "-o", str(out), "-m", card, "--folds", "0"]) == 0
    for index, ry in enumerate((0.0, 90.0)):
        view = ("ap", "lateral")[index]
        png = itk_ref.itk_official_8bit(itk_ref.itk_official_sums(hu, spacing, ry))
        written = read_image(out / "imagesTr" / f"case_000_000{index}.mha")
        assert written.shape == png.shape == (160, 240)
        assert np.abs(written.array[0] - png).max() <= 1 / 255 + 1e-6
        ours = prepare_view(written, view, preset_card(card)).array  # type: ignore[arg-type]
        theirs = itk_ref.monai_official_view(png)
        assert ours.shape == theirs.shape == (128, 160)
        assert _ncc(ours, theirs) >= 0.999
        assert np.abs(ours - theirs).max() <= 3 / 255  # one 8-bit step through the bicubic kernel
        exact = itk_ref.monai_official_view(written.array[0])
        np.testing.assert_allclose(ours, exact, atol=1e-5)  # the chain itself is the scripts' exactly
    truth = itk_ref.monai_official_labels(itk_ref.itk_official_labels(lab, spacing))
    made = read_image(out / "labelsTr" / "case_000.nii.gz").array[0]
    assert made.shape == truth.shape == (128, 128, 160)
    assert (made == truth).mean() >= 0.999 and set(np.unique(made)) == {0, 1, 2}


def test_predict_warns_when_view_position_contradicts_the_option(tmp_path: Path, caplog, capsys) -> None:  # type: ignore[no-untyped-def]
    """A lateral DX (ViewPosition LL) given as --ap and a PA one as --lateral: both named in a warning."""
    from x2s_factory import phantom_pair, tiny_card, write_dx

    card = tiny_card()
    pair = phantom_pair(card)
    ap_view, lateral_view = pair.ap.array[0], pair.lateral.array[0]
    pa = write_dx(tmp_path / "pa.dcm", ap_view, pair.ap.spacing[0], orientation=("L", "F"))
    ll = write_dx(tmp_path / "ll.dcm", lateral_view, pair.lateral.spacing[0], orientation=("P", "F"))
    from x2s_factory import tiny_network

    from medswin.models.checkpoints import save_checkpoint

    model = save_checkpoint(tiny_network(card), card, tmp_path / "tiny.safetensors")
    right = ["x2s", "predict", "--ap", str(pa), "--lateral", str(ll), "-m", str(model)]
    assert main([*right, "-o", str(tmp_path / "ok.nii.gz")]) == 0
    assert "ViewPosition" not in caplog.text
    swapped = ["x2s", "predict", "--ap", str(ll), "--lateral", str(pa), "-m", str(model)]
    orientations = ["--ap-orientation", "L\\F", "--lateral-orientation", "P\\F"]  # override the files' own
    assert main([*swapped, "-o", str(tmp_path / "swapped.nii.gz"), *orientations]) == 0
    assert "ViewPosition LL" in caplog.text and "ViewPosition PA" in caplog.text
    assert "swapped" in capsys.readouterr().out


def test_presets_and_manifests_record_the_same_values_and_handedness() -> None:
    from medswin.models.card import list_presets, preset_card
    from medswin.transforms.radiograph import drr_geometry

    manifests = Path(__file__).parents[2] / "data_manifests"
    presets = [c for c in list_presets() if c.startswith("swin_x2s_base_")]
    assert len(presets) == 9
    for card_id in presets:
        card = preset_card(card_id)
        geometry = json.loads(
            (manifests / card_id.replace("swin_x2s_base_", "x2s_") / "dataset.json").read_text()
        )["geometry"]
        assert drr_geometry(card).values == geometry["drr_values"] == "official"
        assert drr_geometry(card).frame == geometry["frame"]
        assert card.radiographs["antialias"] is False  # type: ignore[index]
        assert "handedness" in card.provenance and geometry["storage"]
    demo = drr_geometry(preset_card("demo-x2s"))
    assert (demo.values, demo.lateral_source) == ("full_precision", "left")  # what the shipped weights saw


def test_a_card_in_another_frame_mirrors_the_radiographs_and_the_output_grid() -> None:
    """Frame RAI (a model trained on RAS-stored files): a film in the standard display is mirrored
    left-right (AP) or front-back (lateral), and the predicted volume's axes point R, A, I."""
    from x2s_factory import tiny_card

    from medswin.transforms.radiograph import output_grid, prepare_view

    lpi = tiny_card()
    rai = tiny_card(radiographs={**lpi.radiographs, "frame": "RAI"})  # type: ignore[dict-item]
    rng = np.random.default_rng(0)
    film = Image(
        rng.random((1, 64, 64)).astype(np.float32), (4.5, 4.5), (0.0, 0.0), np.eye(2), "intensity", {}
    )
    for view in ("ap", "lateral"):
        ours = prepare_view(film, view, lpi).array  # type: ignore[arg-type]
        theirs = prepare_view(film, view, rai).array  # type: ignore[arg-type]
        np.testing.assert_array_equal(theirs, ours[::-1])
    assert output_grid(lpi, (4.5,) * 3).orientation == "LPI"
    assert output_grid(rai, (4.5,) * 3).orientation == "RAI"


def test_x2s_drr_refuses_values_a_card_was_not_trained_on(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    ct, labels = _ct()
    source = _dataset(tmp_path / "in", ct, labels)
    argv = [
        "x2s",
        "drr",
        "-i",
        str(source),
        "-o",
        str(tmp_path / "out"),
        "-m",
        "swin_x2s_base_totalseg_femur",
    ]
    assert main([*argv, "--values", "full_precision"]) != 0
    assert "never saw" in capsys.readouterr().err
    assert main([*argv, "--frame", "rai"]) != 0
    capsys.readouterr()
    assert main([*argv, "--cube-size", "96"]) != 0  # was ignored under -m before: every setting is checked
    assert "cube_size 160" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_film_far_larger_than_any_official_drr_is_anti_aliased() -> None:
    """A 2000-pixel film of fine stripes: resized without anti-aliasing it would keep their noise; the
    official presets anti-alias it (an official DRR is never more than a few times the cube)."""
    from medswin.models.card import preset_card
    from medswin.transforms.radiograph import prepare_view

    stripes = np.indices((2000, 2000)).sum(axis=0) % 2  # one-pixel checkerboard: pure high frequency
    film = Image(stripes[None].astype(np.float32), (0.2, 0.2), (0.0, 0.0), np.eye(2), "intensity", {})
    view = prepare_view(film, "ap", preset_card("swin_x2s_base_totalseg_all"))
    assert view.array.std() < 0.05  # averaged to grey, not aliased into a pattern
    assert any("anti-aliased" in note for note in view.notes)


def test_training_reads_an_official_drr_dataset_as_the_official_scripts_did(tmp_path: Path) -> None:
    """``x2s drr -m CARD`` with an official card, then the trainer's loader: each view it hands the
    network is the scripts' chain (pad, resize without anti-aliasing, crop) of the program's DRR."""
    pytest.importorskip("itk")
    import official_drr_itk as itk_ref
    from x2s_factory import tiny_card

    from medswin.data.manifest import load_datalist
    from medswin.training.biplanar import LoadViewsd

    settings = {"values": "official", "lateral_source": "right", "antialias": False}
    card = tiny_card(id="tiny_official", radiographs={**tiny_card().radiographs, **settings})
    card = card.replace(labels={0: "background", 1: "marker"}, config={**card.config, "out_channels": 2})
    card_file = tmp_path / "tiny_official.json"
    card_file.write_text(card.to_json())
    spacing = (1.5, 1.5, 2.5)  # 40 x 44 x 40 voxels: a 64 cube gives a 64 x 96 DRR, resized to 64
    ct, labels = _ct()
    ct = Image(ct.array[:, :40, :44, :40], spacing, (0.0, 0.0, 0.0), np.eye(3), "intensity", {})
    labels = Image(labels.array[:, :40, :44, :40], spacing, (0.0, 0.0, 0.0), np.eye(3), "label", {})
    source = _dataset(tmp_path / "in", ct, labels)
    out = tmp_path / "out"
    assert main(["x2s", "drr", "-i", str(source), "-o", str(out), "-m", str(card_file), "--folds", "0"]) == 0
    entry = load_datalist(out / "datalist.json").training[0]
    sample = LoadViewsd(card, {})({"case": entry})
    volume = ct.array[0].astype(np.int16)
    for key, ry in (("ap", 0.0), ("lateral", 90.0)):
        png = itk_ref.itk_official_8bit(itk_ref.itk_official_sums(volume, spacing, ry, size=64))
        assert png.shape == (64, 96)
        theirs = itk_ref.monai_official_view(png, roi=(64, 64), size=64)
        assert _ncc(sample[key][0], theirs) >= 0.999
        assert np.abs(sample[key][0] - theirs).max() <= 3 / 255
        written = read_image(out / "imagesTr" / f"case_000_000{int(key == 'lateral')}.mha").array[0]
        exact = itk_ref.monai_official_view(written, roi=(64, 64), size=64)
        np.testing.assert_allclose(sample[key][0], exact, atol=1e-5)  # the scripts' chain itself, exactly
    assert sample["label"].shape == (1, 64, 64, 64) and set(np.unique(sample["label"])) == {0, 1}


def test_the_programs_lateral_source_is_on_the_minus_i_side() -> None:
    """``-rx -90 -ry 90`` built as Rx·Ry would put the source at +i; the Euler transform rebuilds the
    matrix from gimbal-locked angles, so the program's source is at -i (the ITK oracle tests agree)."""
    from medswin.transforms.drr import official_rotation

    beam = np.array([0.0, 0.0, 1.0])  # towards the focal point before the rotation
    np.testing.assert_allclose(official_rotation("ap") @ beam, [0.0, 1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(official_rotation("lateral") @ beam, [-1.0, 0.0, 0.0], atol=1e-12)
    # detector columns still run along +i (AP) and +j (lateral), rows along -k
    np.testing.assert_allclose(official_rotation("lateral") @ [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(official_rotation("lateral") @ [0.0, 1.0, 0.0], [0.0, 0.0, -1.0], atol=1e-12)
