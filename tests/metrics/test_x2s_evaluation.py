"""Swin-X2S evaluation on made-up bones of known geometry, with the real manifest label maps."""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "morphometry"))

from morph_shapes import bounded, box, cylinder, sphere, unit, voxelise  # noqa: E402

from medswin.errors import MetricInputError  # noqa: E402
from medswin.io.image import Image  # noqa: E402
from medswin.io.writers import write_labels  # noqa: E402
from medswin.metrics.x2s import (  # noqa: E402
    MEASUREMENT_COLUMNS,
    MORPHOMETRY_COLUMNS,
    OVERLAP_COLUMNS,
    dice_with_background_official,
    evaluate_x2s_case,
    evaluate_x2s_folders,
    format_x2s_table,
    measure_x2s_structures,
    summarize_x2s,
)
from medswin.metrics.x2s_anatomy import anatomy_from_labels  # noqa: E402

MANIFESTS = Path(__file__).parents[2] / "data_manifests"


def manifest_labels(name: str) -> dict[str, str]:
    return json.loads((MANIFESTS / name / "dataset.json").read_text())["labels"]


def copy_of(image: Image) -> Image:
    """A separate prediction holding the same voxels (nothing may rely on object identity)."""
    return image.with_array(image.array.copy())


# ------------------------------------------------------------------------------------------ shapes
def femur_parts(side: float, nsa_deg: float = 128.0, head_radius: float = 20.0) -> list:
    """A femur (left: side +1 at +x, neck pointing medially): shaft and neck cylinders, sphere head."""
    shaft = unit([0.1 * side, -0.05, 1.0])
    medial = np.array([-side, -0.25, 0.0])
    medial = unit(medial - (medial @ shaft) * shaft)
    tilt = np.radians(180.0 - nsa_deg)
    neck = np.cos(tilt) * shaft + np.sin(tilt) * medial
    junction = np.array([70.0 * side, 10.0, 0.0])
    head = junction + 40.0 * neck
    return [
        cylinder(junction - 100.0 * shaft, junction + 20.0 * shaft, 12.0),
        cylinder(junction, head, 12.0),
        sphere(head, head_radius),
    ]


def hips_and_femurs() -> Image:
    """TotalSeg-all labels: femur_left 53, femur_right 54, and a box sacrum 50 (1.5 x 0.9 x 2.0 mm voxels)."""
    parts = {53: femur_parts(1.0), 54: femur_parts(-1.0), 50: [box((0, 10, 40), (30, 24, 20))]}
    return voxelise(parts, (-105, -30, -110), (105, 50, 75), spacing=(1.5, 0.9, 2.0))


def ellipsoid(centre, semi_axes) -> object:
    c, s = np.asarray(centre, dtype=float), np.asarray(semi_axes, dtype=float)
    return bounded(lambda p: (((p - c) / s) ** 2).sum(1) <= 1.0, c, float(s.max()))


def pelvis() -> Image:
    """TotalSeg-pelvic labels: sacrum 1, hip_right 2 (-x), hip_left 3 (+x): wing, pubic ramus, tubercle."""

    def hip(side: float) -> list:
        return [
            ellipsoid((60 * side, 10, 30), (18, 35, 40)),
            cylinder((60 * side, -10, 0), (20 * side, -15, -40), 7.0),
            sphere((20 * side, -15, -40), 8.0),
        ]

    parts = {3: hip(1.0), 2: hip(-1.0), 1: [box((0, 30, 20), (30, 25, 40))]}
    return voxelise(parts, (-90, -40, -60), (90, 60, 80), spacing=(1.6, 1.4, 2.0))


def vertebra_parts(centre) -> list:
    """Body 40 (LR) x 30 (AP) x 25 (SI) mm, canal 15 mm deep, lamina and a 30 mm spinous process."""
    centre = np.asarray(centre, dtype=float)

    def part(offset, size):
        return box(centre + np.asarray(offset, dtype=float), size)

    return [
        part((0, 0, 0), (40, 30, 25)),
        part((13, 22.5, 0), (8, 15, 12)),
        part((-13, 22.5, 0), (8, 15, 12)),
        part((0, 33.5, 0), (34, 7, 12)),
        part((0, 52, -3), (6, 30, 10)),
    ]


def spine(labels=(19, 20, 21)) -> Image:
    """Vertebrae stacked 32 mm apart, the first label on top (spine manifest: 19 T12, 20 L1, 21 L2)."""
    parts = {value: vertebra_parts((0.0, 0.0, 32.0 * (1 - k))) for k, value in enumerate(labels)}
    top = 32.0 + 18
    return voxelise(parts, (-25, -20, top - 32.0 * len(labels) - 4), (25, 70, top), spacing=(1.0, 0.9, 1.3))


RIB_CENTRE = np.array([-40.0, 20.0, 150.0])


def rib() -> Image:
    """TotalSeg-rib label 5 (rib_left_5): a tube of radius 4 mm along a 120 degree arc of radius 45 mm."""
    normal = unit([0.0, 0.3, 1.0])
    e1 = unit(np.cross(normal, [0.0, 0.0, 1.0]))
    e2 = np.cross(normal, e1)

    def inside(p: np.ndarray) -> np.ndarray:
        rel = p - RIB_CENTRE
        a, b, h = rel @ e1, rel @ e2, rel @ normal
        phi = np.arctan2(b, a)
        return (phi >= 0) & (phi <= np.radians(120.0)) & ((np.hypot(a, b) - 45.0) ** 2 + h**2 <= 16.0)

    tube = bounded(inside, RIB_CENTRE, 49.0)
    return voxelise({5: [tube]}, RIB_CENTRE - 52, RIB_CENTRE + 52, spacing=(1.2, 1.0, 1.5))


@pytest.fixture(scope="module")
def femurs() -> Image:
    return hips_and_femurs()


# ----------------------------------------------------------------------------------------- anatomy
EXPECTED_ANATOMY = {
    # manifest: (femur L, femur R, hip L, hip R, sacrum, vertebrae, ribs)
    "x2s_totalseg_all": (53, 54, 52, 51, 50, tuple(range(1, 26)), tuple(range(26, 50))),
    "x2s_totalseg_femur": (1, 2, None, None, None, (), ()),
    "x2s_totalseg_pelvic": (None, None, 3, 2, 1, (), ()),
    "x2s_ctpelvic1k": (None, None, 2, 3, 1, (), ()),
    "x2s_totalseg_spine": (None, None, None, None, None, tuple(range(1, 26)), ()),
    "x2s_ctspine1k": (None, None, None, None, None, tuple(range(1, 26)), ()),
    "x2s_verse19": (None, None, None, None, None, tuple(range(1, 26)), ()),
    "x2s_totalseg_rib": (None, None, None, None, None, (), tuple(range(1, 25))),
    "x2s_ribseg_v2": (None, None, None, None, None, (), tuple(range(1, 25))),
}


def test_every_x2s_manifest_is_covered() -> None:
    assert {path.parent.name for path in MANIFESTS.glob("x2s_*/dataset.json")} == set(EXPECTED_ANATOMY)


@pytest.mark.parametrize("manifest", sorted(EXPECTED_ANATOMY))
def test_anatomy_from_the_manifest_label_maps(manifest: str) -> None:
    labels = manifest_labels(manifest)
    anatomy = anatomy_from_labels(labels)
    found = (
        anatomy.femur_left,
        anatomy.femur_right,
        anatomy.hip_left,
        anatomy.hip_right,
        anatomy.sacrum,
        anatomy.vertebrae,
        anatomy.ribs,
    )
    assert found == EXPECTED_ANATOMY[manifest]
    assert anatomy.labels == tuple(sorted(int(v) for v in labels if int(v) != 0))
    assert all(anatomy.group_of(v) != "other" for v in anatomy.labels), "every X2S class is a known bone"
    if anatomy.vertebrae:  # cranio-caudal order by name, whatever the values
        assert [anatomy.names[v] for v in anatomy.vertebrae[:2]] == ["vertebrae_C1", "vertebrae_C2"]
        assert anatomy.names[anatomy.vertebrae[-1]] == "vertebrae_L6"
    if anatomy.ribs:
        assert anatomy.names[anatomy.ribs[12]] == "rib_right_1"


def test_anatomy_structures_of_totalseg_all_and_bad_maps() -> None:
    anatomy = anatomy_from_labels(manifest_labels("x2s_totalseg_all"))
    structures = anatomy.structures()
    assert len(structures) == 2 + 1 + 25 + 24
    assert structures[2].name == "pelvis" and structures[2].labels == (52, 51)
    assert "25 vertebrae, 24 ribs" in repr(anatomy)
    with pytest.raises(MetricInputError, match="both named"):
        anatomy_from_labels({1: "femur_left", 2: "Femur_Left"})
    with pytest.raises(MetricInputError, match="no foreground"):
        anatomy_from_labels({0: "background"})
    assert anatomy_from_labels({1: "coccyx"}).group_of(1) == "other"


# ------------------------------------------------------------------------------------ single cases
@pytest.mark.parametrize("group", ["femur", "pelvis", "vertebra", "rib"])
def test_perfect_prediction_scores_perfectly(group: str, femurs: Image) -> None:
    ref, labels = {
        "femur": (femurs, manifest_labels("x2s_totalseg_all")),
        "pelvis": (pelvis(), manifest_labels("x2s_totalseg_pelvic")),
        "vertebra": (spine(), manifest_labels("x2s_totalseg_spine")),
        "rib": (rib(), manifest_labels("x2s_totalseg_rib")),
    }[group]
    result = evaluate_x2s_case(copy_of(ref), ref, anatomy_from_labels(labels), case="perfect")
    assert result.ok and result.overlap
    for row in result.overlap:
        assert (row["dice"], row["hd95"], row["assd"], row["empty"]) == (1.0, 0.0, 0.0, "")
    assert result.dice_with_background_official == 1.0
    rows = [row for row in result.morphometry if row["group"] == group]
    assert rows and all(row["status"] == "ok" for row in result.morphometry)
    assert max(row["error"] for row in rows) < 1e-9
    reference = {(row["structure"], row["parameter"]): row["reference_value"] for row in rows}
    # the reference values are real measurements of the construction, not placeholders
    if group == "femur":
        assert reference[("femur_left", "head_radius_mm")] == pytest.approx(20.0, abs=0.6)
        assert reference[("femur_right", "neck_shaft_angle_deg")] == pytest.approx(128.0, abs=1.5)
    elif group == "pelvis":
        assert reference[("pelvis", "inter_asis_mm")] > 100.0
    elif group == "vertebra":
        assert reference[("vertebrae_L1", "canal_depth_mm")] == pytest.approx(15.0, abs=1.0)
        assert reference[("vertebrae_L1", "body_height_anterior_mm")] == pytest.approx(25.0, abs=1.0)
    else:
        assert result.overlap[0]["cl_dice"] == 1.0
        assert reference[("rib_left_5", "length_mm")] == pytest.approx(45.0 * np.radians(120.0), rel=0.03)
    summary = summarize_x2s([result])
    assert summary["overlap"][group]["dice"]["mean"] == 1.0
    assert summary["morphometry"][group]["n_failed"] == 0


def test_shift_gives_hd95_and_head_centre_error_in_mm_on_an_anisotropic_grid(femurs: Image) -> None:
    """Three voxels along the 0.9 mm axis are 2.7 mm (not 3 voxels, not 4.5 or 6 mm of the other axes)."""
    shifted = femurs.with_array(np.roll(femurs.array, 3, axis=2))
    anatomy = anatomy_from_labels(manifest_labels("x2s_totalseg_all"))
    result = evaluate_x2s_case(shifted, femurs, anatomy, case="shifted")
    overlap = {row["name"]: row for row in result.overlap}
    assert overlap["sacrum"]["hd95"] == pytest.approx(2.7, abs=1e-9)  # a box: its faces move by 2.7 mm
    for name in ("femur_left", "femur_right"):
        assert overlap[name]["hd95"] == pytest.approx(2.7, abs=1e-6)
        assert 0.0 < overlap[name]["assd"] < 2.7
        assert 0.0 < overlap[name]["dice"] < 1.0
    errors = {(r["structure"], r["parameter"]): r["error"] for r in result.morphometry}
    for side in ("femur_left", "femur_right"):
        assert errors[(side, "head_centre_mm")] == pytest.approx(2.7, abs=1e-3)
        assert errors[(side, "neck_shaft_angle_deg")] < 1e-3  # a translation changes no angle or size
        assert errors[(side, "head_radius_mm")] < 1e-3
    assert {r["structure"] for r in result.morphometry} == {"femur_left", "femur_right"}  # no hips: no pelvis
    summary = summarize_x2s([result])
    assert summary["morphometry"]["femur"]["parameters"]["head_centre_mm"]["mean"] == pytest.approx(
        2.7, abs=1e-3
    )
    assert summary["overlap"]["pelvis"]["hd95"]["mean"] == pytest.approx(2.7, abs=1e-9)


def test_missing_femur_is_a_failure_and_lowers_the_means(femurs: Image) -> None:
    anatomy = anatomy_from_labels(manifest_labels("x2s_totalseg_all"))
    partial = femurs.array.copy()
    partial[partial == 54] = 0
    missing = evaluate_x2s_case(femurs.with_array(partial), femurs, anatomy, case="missing")
    perfect = evaluate_x2s_case(copy_of(femurs), femurs, anatomy, case="perfect")

    right = [row for row in missing.morphometry if row["structure"] == "femur_right"]
    assert right and all(row["status"] == "failed" and row["error"] is None for row in right)
    assert "not present" in right[0]["reason"]
    summary = summarize_x2s([perfect, missing])
    femur = summary["overlap"]["femur"]
    assert femur["missed"] == 1 and femur["n"] == 4
    assert femur["dice"]["mean"] == pytest.approx(0.75)  # 1, 1, 1 and the missed femur's 0
    assert femur["dice"]["mean"] < summarize_x2s([perfect])["overlap"]["femur"]["dice"]["mean"]
    assert femur["hd95"]["max"] == pytest.approx(
        float(np.linalg.norm(np.multiply(femurs.shape, femurs.spacing)))
    )
    morph = summary["morphometry"]["femur"]
    assert (morph["n_structures"], morph["n_ok"], morph["n_failed"]) == (4, 3, 1)
    assert morph["failures"][0]["structure"] == "femur_right" and morph["failures"][0]["case"] == "missing"
    centre = morph["parameters"]["head_centre_mm"]
    assert (centre["n"], centre["n_failed"]) == (3, 1)
    # sphere fits of identical surfaces: LAPACK's rounding varies with CPU and alignment, far below 1e-6 mm
    assert centre["mean"] == pytest.approx(0.0, abs=1e-6)
    assert (
        summarize_x2s([missing])["morphometry"]["femur"]["parameters"]["head_centre_mm"][
            "median_failed_as_worst"
        ]
        == math.inf
    )
    # official style (background included, per-case mean over reference classes) flatters the partial case
    ours = summarize_x2s([missing])["dice_per_case"]["foreground"]["mean"]
    official = missing.dice_with_background_official
    assert ours == pytest.approx((1.0 + 1.0 + 0.0) / 3)
    assert ours < official < 1.0
    table = format_x2s_table(summary)
    assert "femur_right of missing failed" in table and "Dice excludes background" in table


def test_structure_absent_from_the_reference_is_not_compared(femurs: Image) -> None:
    anatomy = anatomy_from_labels(manifest_labels("x2s_totalseg_all"))
    reference = femurs.array.copy()
    reference[reference == 54] = 0
    result = evaluate_x2s_case(copy_of(femurs), femurs.with_array(reference), anatomy, case="extra")
    assert {row["structure"] for row in result.morphometry} == {"femur_left"}
    extra = next(row for row in result.overlap if row["label"] == 54)
    assert (extra["empty"], extra["dice"]) == ("ref", 0.0)  # a false positive still costs overlap
    assert summarize_x2s([result])["overlap"]["femur"]["false_positive"] == 1


def test_a_prediction_alone_is_measured_as_evaluate_measures_it(femurs: Image) -> None:
    """measure_x2s_structures gives the values evaluate_x2s_case reports, without a reference."""
    image = spine()
    anatomy = anatomy_from_labels(manifest_labels("x2s_totalseg_spine"))
    rows = measure_x2s_structures(image, anatomy)
    assert rows and all(set(row) == set(MEASUREMENT_COLUMNS) for row in rows)
    assert [row["structure"] for row in rows[:: len(rows) // 3]] == [
        "vertebrae_T12",
        "vertebrae_L1",
        "vertebrae_L2",
    ]
    evaluated = evaluate_x2s_case(copy_of(image), image, anatomy).morphometry
    assert [(r["structure"], r["parameter"]) for r in rows] == [
        (r["structure"], r["parameter"]) for r in evaluated
    ]
    for row, compared in zip(rows, evaluated, strict=True):
        assert row["status"] == "ok" and row["unit"] == compared["unit"]
        if row["kind"] == "scalar":
            assert row["value"] == pytest.approx(compared["predicted_value"], abs=1e-9)
    depth = next(r for r in rows if (r["structure"], r["parameter"]) == ("vertebrae_L1", "canal_depth_mm"))
    assert depth["value"] == pytest.approx(15.0, abs=1.0)
    axis = next(r for r in rows if (r["structure"], r["parameter"]) == ("vertebrae_L1", "height_axis"))
    assert len(axis["value"]) == 3 and np.linalg.norm(axis["value"]) == pytest.approx(1.0)

    # absent bones have no rows; a bone that cannot be measured says why, with no value
    all_labels = anatomy_from_labels(manifest_labels("x2s_totalseg_all"))
    partial = femurs.array.copy()
    partial[partial == 54] = 0
    partial[partial == 53] = 0
    partial[0, 40:60, 40:60, 40:50] = 53  # a 30 x 18 x 20 mm block: no shaft to fit an axis
    measured = measure_x2s_structures(femurs.with_array(partial), all_labels)
    assert {row["structure"] for row in measured} == {"femur_left"}
    assert all(row["status"] == "failed" and row["value"] is None for row in measured)
    assert "shaft" in measured[0]["reason"]
    centre = measure_x2s_structures(femurs, all_labels)[0]
    assert (centre["parameter"], centre["unit"], len(centre["value"])) == ("head_centre_mm", "mm", 3)


def test_first_vertebra_axis_is_not_taken_through_the_background() -> None:
    """C1's cranial neighbour by value would be label 0; the spine axis must come from names."""
    image = spine(labels=(1, 2))
    result = evaluate_x2s_case(copy_of(image), image, anatomy_from_labels(manifest_labels("x2s_ctspine1k")))
    values = {(r["structure"], r["parameter"]): r for r in result.morphometry}
    c1 = values[("vertebrae_C1", "body_height_posterior_mm")]
    assert c1["status"] == "ok", c1["reason"]
    assert c1["reference_value"] == pytest.approx(25.0, abs=1.0)
    assert values[("vertebrae_C1", "sagittal_tilt_deg")]["reference_value"] == pytest.approx(0.0, abs=1e-6)


def test_official_dice_equals_monai_dice_metric_defaults() -> None:
    import torch
    from monai.metrics import DiceMetric

    rng = np.random.default_rng(7)
    ref = rng.integers(0, 3, size=(12, 10, 8))
    pred = ref.copy()
    pred[rng.random(ref.shape) < 0.3] = 1
    pred[0, 0, :4] = 3  # a class absent from the reference: ignored by the official metric
    classes = 4
    one_hot = [
        torch.nn.functional.one_hot(torch.as_tensor(a), classes).permute(3, 0, 1, 2)[None]
        for a in (pred, ref)
    ]
    metric = DiceMetric()
    metric(one_hot[0].float(), one_hot[1].float())
    expected = float(metric.aggregate())
    assert dice_with_background_official(pred, ref) == pytest.approx(expected, abs=1e-6)
    assert dice_with_background_official(pred, ref) > np.mean(
        [2 * np.sum((pred == c) & (ref == c)) / (np.sum(pred == c) + np.sum(ref == c)) for c in (1, 2, 3)]
    )


# ---------------------------------------------------------------------------------------- folders
def test_folder_evaluation_with_missing_corrupt_and_mismatched_cases(tmp_path: Path) -> None:
    labels = manifest_labels("x2s_totalseg_spine")
    vertebra = voxelise({20: vertebra_parts((0.0, 0.0, 0.0))}, (-25, -20, -18), (25, 70, 18), (1.0, 0.9, 1.3))
    preds, refs = tmp_path / "pred", tmp_path / "ref"
    preds.mkdir()
    refs.mkdir()
    for case in ("a", "b", "c", "e"):
        write_labels(vertebra, refs / f"{case}.nii.gz")
    write_labels(vertebra, preds / "a.nii.gz")
    (preds / "c.nii.gz").write_bytes(b"this is not a NIfTI file")
    coarse = Image(vertebra.array[:, ::2], (2.0, 0.9, 1.3), vertebra.origin, vertebra.direction, "label")
    write_labels(coarse, preds / "e.nii.gz")
    write_labels(vertebra, preds / "d.nii.gz")  # no reference: reported, not evaluated

    output = tmp_path / "out" / "x2s.csv"
    output.parent.mkdir()
    summary = evaluate_x2s_folders(preds, refs, labels, output)

    assert (summary["n_cases"], summary["n_evaluated"], summary["n_failed"]) == (4, 1, 3)
    failed = {f["case"]: f["error"] for f in summary["failed"]}
    assert set(failed) == {"b", "c", "e"}
    assert "no prediction" in failed["b"]
    assert "c.nii.gz" in failed["c"]
    assert "not on one grid" in failed["e"]
    assert summary["unpaired_predictions"] == ["d"]
    assert summary["anatomy"]["groups"]["20"] == "vertebra"

    with output.open(newline="") as handle:
        overlap = list(csv.DictReader(handle))
    assert tuple(overlap[0]) == OVERLAP_COLUMNS
    assert [(row["case"], row["name"], float(row["dice"])) for row in overlap] == [("a", "vertebrae_L1", 1.0)]
    morph_path = tmp_path / "out" / "x2s_morphometry.csv"
    with morph_path.open(newline="") as handle:
        morph = list(csv.DictReader(handle))
    assert tuple(morph[0]) == MORPHOMETRY_COLUMNS
    assert {row["status"] for row in morph} == {"ok"} and {row["case"] for row in morph} == {"a"}
    height = next(row for row in morph if row["parameter"] == "body_height_anterior_mm")
    assert (float(height["error"]), height["unit"]) == (0.0, "mm")
    assert float(height["reference_value"]) == pytest.approx(25.0, abs=1.0)

    on_disk = json.loads((tmp_path / "out" / "x2s_summary.json").read_text())
    assert on_disk["n_failed"] == 3 and on_disk["notes"] == summary["notes"]
    assert sorted(p.name for p in output.parent.iterdir()) == [
        "x2s.csv",
        "x2s_morphometry.csv",
        "x2s_summary.json",
    ]
    table = format_x2s_table(summary)
    assert "failed case b: no prediction" in table and "vertebra" in table
