"""The quality verdict in a real viewer: the issue's scenarios through the Segment panel with the shipped
demo model, and the Review dock over a ``medswin predict`` output folder."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from napari_medswin import _review
from napari_medswin._layers import image_from_layer, image_to_layer_data
from napari_medswin._quality import structure_quality, verdict_html
from napari_medswin._review import ReviewWidget
from napari_medswin._segment_widget import SegmentWidget
from pages import RUN_TIMEOUT_MS, SegmentPage

from medswin.cli.main import main as medswin
from medswin.data.phantom import make_ct_phantom
from medswin.io import read_image, write_image
from medswin.qc.core import QualityReport

pytestmark = pytest.mark.napari


def _mirrored(seed: int):
    """A CT mirrored in its array, the affine unchanged (a wrong header or a flipped export)."""
    image = make_ct_phantom(seed=seed).image
    return image.with_array(image.array[:, ::-1].copy())


#: scenario -> (image, verdict, flagged checks that must be among the flagged, words of their reasons)
SCENARIOS = {
    "phantom": (lambda: make_ct_phantom(seed=7).image, "ok", {}),
    "mirrored": (
        lambda: _mirrored(7),
        "warn",
        {"volume:liver": "below the plausible", "volume:spleen": "above the plausible"},
    ),
    "thick_10mm": (
        lambda: make_ct_phantom(shape=(96, 96, 26), spacing=(3.0, 3.0, 10.0), seed=3004).image,
        "warn",
        {"fit:spacing": "volumes are unreliable"},
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_the_demo_scenarios_end_in_the_recorded_verdict_shown_in_the_segment_panel(
    scenario, viewer, qtbot, tmp_path
):
    """26-32 s each here (2 shared cores): the demo model on a 96x96x64 phantom in a worker."""
    make, verdict, flagged = SCENARIOS[scenario]
    data, kwargs, _ = image_to_layer_data(make(), scenario)
    viewer.add_image(data, **kwargs)
    page = SegmentPage(viewer, SegmentWidget(viewer))
    page.choose_model("demo")
    page.press_run()
    assert page.running
    qtbot.waitUntil(lambda: not page.running, timeout=3 * RUN_TIMEOUT_MS)

    quality = page.widget.quality
    assert quality is not None and quality.verdict == verdict, [c.reason for c in quality.flagged()]
    reasons = {c.name: c.reason for c in quality.flagged()}
    for name, words in flagged.items():
        assert words in reasons[name]
    # the panel keeps the verdict and every flagged reason (wrapped, not cut), in the verdict's colour
    assert page.verdict_visible and page.verdict_wraps
    assert f">{verdict}</b>" in page.verdict and page.verdict == verdict_html(quality, f"{scenario} [demo]")
    for name in reasons:
        assert name in page.verdict_text
    # each structure's row shows its check; the CSV carries it and the case's verdict
    table = page.volume_table()
    shown = dict(zip(table["name"], table["QC"], strict=True))
    for name in flagged:
        kind, _, structure = name.partition(":")
        if kind != "fit":
            assert shown[structure] == quality.get(name).verdict
    if verdict == "ok":
        assert set(shown.values()) == {"ok"}
    with open(page.widget.export_volumes(tmp_path / "volumes.csv"), newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert {(r["case_qc"], r["case_qc_reason"]) for r in rows} == {(quality.verdict, quality.reason)}
    assert {r["name"]: r["qc"] for r in rows} == shown


@pytest.fixture(scope="module")
def batch(tmp_path_factory, tiny_checkpoint) -> tuple[Path, Path]:
    """``medswin predict`` with the tiny checkpoint on two small phantom NIfTIs (one mirrored) and a
    broken file (the case fails; summary.csv says why)."""
    root = tmp_path_factory.mktemp("review")
    inputs, out = root / "in", root / "out"
    case = make_ct_phantom(shape=(24, 20, 12), spacing=(1.2, 0.9, 2.5), orientation="oblique", seed=40)
    write_image(case.image.with_array(np.round(case.image.array)), inputs / "alpha.nii.gz", dtype="int16")
    mirrored = make_ct_phantom(shape=(24, 20, 12), spacing=(1.2, 0.9, 2.5), seed=42).image
    mirrored = mirrored.with_array(np.round(mirrored.array[:, ::-1]))
    write_image(mirrored, inputs / "mirrored.nii.gz", dtype="int16")
    (inputs / "broken.nii.gz").write_bytes(b"not a NIfTI file" * 8)  # a case that does not run
    assert medswin(["-q", "predict", "-i", str(inputs), "-o", str(out), "-m", str(tiny_checkpoint)]) == 1
    return inputs, out


@pytest.fixture
def errors(monkeypatch):
    shown: list[str] = []
    monkeypatch.setattr(_review, "show_error", shown.append)
    return shown


def _records(out: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}


@pytest.mark.slow  # 15 s with its batch (a medswin predict of two cases)
def test_the_review_dock_lists_cases_by_verdict_and_opens_image_and_labels_on_click(viewer, batch, errors):
    inputs, out = batch
    _, widget = viewer.window.add_plugin_dock_widget("medswin", "Review cases by quality")
    assert isinstance(widget, ReviewWidget)
    widget._folder.value = out
    records = _records(out)
    assert set(records) == {"alpha", "mirrored"}
    # fail first, then cases that did not run, then warn, then ok
    rank = {"fail": 0, "warn": 2, "ok": 3}
    recorded = sorted(records, key=lambda c: (rank[records[c]["qc"]["verdict"]], c))
    failed = [c for c in recorded if records[c]["qc"]["verdict"] == "fail"]
    expected = [*failed, "broken", *recorded[len(failed) :]]
    assert [r.case for r in widget.rows] == expected
    shown = widget._table.texts()
    broken = expected.index("broken")
    assert shown["QC"][broken] == "did not run" and "not a valid NIfTI file" in shown["first reason"][broken]
    assert widget.open_case(broken) == []
    assert errors.pop().startswith("case 'broken' did not run: it has no labels to open")
    for row, case in enumerate(widget.rows):
        if case.case == "broken":
            continue
        quality = QualityReport.from_dict(records[case.case]["qc"])
        assert (shown["case"][row], shown["QC"][row]) == (case.case, quality.verdict)
        assert shown["first reason"][row] == quality.reason

    # no inputs folder yet: the labels open, the dock says where to find the image
    first = widget.rows[0].case
    (labels_layer,) = widget.open_case(0)
    assert errors == [f"choose the folder of the inputs to open the image of case {first!r} ({first}.nii.gz)"]
    quality = QualityReport.from_dict(records[first]["qc"])
    assert widget._verdict.value == verdict_html(quality, first)
    labels = image_from_layer(labels_layer, kind="label")
    written = read_image(out / f"{first}.nii.gz")
    assert labels.grid_difference(written, atol_mm=1e-4) is None
    np.testing.assert_array_equal(labels.array, written.array)

    # with the inputs folder: the image opens on the same physical grid; the labels keep the
    # verdict, so the Segment panel's volume table shows each structure's recorded check
    widget._images.value = inputs
    image_layer, labels_layer = widget.open_case(0)  # a second click adds new layers (napari numbers them)
    assert image_layer.name == f"{first}.nii.gz" and labels_layer.name == f"{first} [tiny_phantom] [1]"
    np.testing.assert_allclose(
        image_layer._data_to_world.affine_matrix, labels_layer._data_to_world.affine_matrix, atol=1e-6
    )
    segment = SegmentPage(viewer, SegmentWidget(viewer))
    segment.choose_volumes_of(labels_layer)
    assert segment.widget.quality == quality
    assert segment.volume_table()["QC"] == [
        structure_quality(quality, v.name)[0] for v in segment.widget.volumes
    ]
    assert len(errors) == 1


@pytest.mark.slow  # 5 s: a medswin predict of one case
def test_the_review_dock_says_when_a_record_does_not_name_its_image(
    viewer, batch, errors, tmp_path, tiny_checkpoint
):
    inputs, _ = batch
    out = tmp_path / "hidden"
    argv = ["-q", "predict", "-i", str(inputs / "alpha.nii.gz"), "-o", str(out), "--case-names", "index"]
    assert medswin([*argv, "-m", str(tiny_checkpoint)]) == 0
    widget = ReviewWidget(viewer)
    widget._images.value = inputs
    widget._folder.value = out
    (case,) = widget.rows
    assert case.case.startswith("case-")
    (labels_layer,) = widget.open_case(0)
    assert labels_layer.name.startswith(case.case)
    assert errors == [
        f"the image of case {case.case!r} is not named in its record (case names hide their source): "
        "open it with File > Open"
    ]
