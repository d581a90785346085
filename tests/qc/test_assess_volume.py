"""The volume checks through their public entry, ``assess_volume``, on phantom CTs and their true labels.

The true labels follow anatomy: mirroring a phantom's array (header unchanged) moves them with the
organs, which is what a model that labels by anatomy would predict, so the sides check must fail.
"""

from __future__ import annotations

import numpy as np
import pytest

from medswin.data.phantom import make_ct_phantom
from medswin.io import Image
from medswin.models import preset_card
from medswin.qc import assess_volume

CARD = preset_card("demo")


def _flagged(report, kind: str) -> dict[str, str]:
    return {c.name.split(":", 1)[1]: c.verdict for c in report.flagged() if c.name.startswith(f"{kind}:")}


@pytest.mark.parametrize("orientation", ["LPS", "RAS", "oblique"])
def test_a_phantom_and_its_true_labels_are_ok_in_every_orientation(orientation: str) -> None:
    case = make_ct_phantom(orientation=orientation, seed=11)
    report = assess_volume(case.image, case.labels, CARD)
    assert report.verdict == "ok", [c.reason for c in report.flagged()]
    names = {c.name for c in report.checks}
    for organ in ("liver", "spleen", "kidney_right", "kidney_left"):
        assert {f"sides:{organ}", f"volume:{organ}", f"pieces:{organ}", f"edge:{organ}"} <= names
    assert {"fit:modality", "fit:intensity", "fit:spacing", "fit:field_of_view"} <= names
    liver = report.get("sides:liver")
    assert liver is not None and liver.value > 30  # mm towards the patient's right


def test_a_mirrored_array_with_an_unchanged_header_fails_the_sides_of_every_sided_organ() -> None:
    case = make_ct_phantom(orientation="oblique", seed=12)
    image = case.image.with_array(case.image.array[:, ::-1].copy())
    labels = case.labels.with_array(case.labels.array[:, ::-1].copy())
    report = assess_volume(image, labels, CARD)
    assert report.verdict == "fail"
    assert _flagged(report, "sides") == dict.fromkeys(
        ("liver", "spleen", "kidney_right", "kidney_left"), "fail"
    )
    reason = report.get("sides:liver").reason
    assert "patient's left" in reason and "mirrored" in reason
    assert report.reason == reason  # the first failing check is what summary.csv shows


def test_a_wrong_pixel_size_fails_every_volume_far_outside_its_range() -> None:
    case = make_ct_phantom(seed=13)
    labels, image = case.labels, case.image  # a header saying cm where the scanner meant mm
    spacing = tuple(s * 10 for s in labels.spacing)
    tenfold = Image(labels.array, spacing, labels.origin, labels.direction, "label")
    image = Image(image.array, spacing, image.origin, image.direction, "intensity", dict(image.meta))
    report = assess_volume(image, tenfold, CARD)
    volumes = _flagged(report, "volume")
    assert volumes == dict.fromkeys(("liver", "spleen", "kidney_right", "kidney_left", "vertebra"), "fail")
    liver = report.get("volume:liver")
    assert liver.value > 100_000 and liver.limit == [160.0, 390.0]
    assert "pixel size" in liver.reason


def test_thick_slices_warn_that_volumes_are_unreliable() -> None:
    case = make_ct_phantom(shape=(96, 96, 26), spacing=(3.0, 3.0, 10.0), seed=14)
    report = assess_volume(case.image, case.labels, CARD)
    assert report.verdict == "warn"
    spacing = report.get("fit:spacing")
    assert spacing.verdict == "warn" and spacing.value == 10.0 and spacing.limit == 8.0
    assert "volumes are unreliable" in spacing.reason and report.reason == spacing.reason


def test_an_organ_cut_by_the_scan_edge_is_a_lower_bound_and_a_split_organ_is_flagged() -> None:
    case = make_ct_phantom(seed=15)
    labels = np.asarray(case.labels.array[0])
    top = int(np.nonzero((labels == 1).any(axis=(0, 1)))[0].max())  # the liver's highest slice (LPS: head)
    cut = slice(0, top - 8)  # the scan ends 8 slices below the liver's dome
    image, labels_image = case.image, case.labels  # cropped from index 0: the origin stays
    image = Image(
        image.array[:, :, :, cut].copy(),
        image.spacing,
        image.origin,
        image.direction,
        "intensity",
        image.meta,
    )
    cropped = Image(
        labels_image.array[:, :, :, cut].copy(), image.spacing, image.origin, image.direction, "label"
    )
    split = np.asarray(cropped.array).copy()
    liver_z = np.nonzero((split[0] == 1).any(axis=(0, 1)))[0]
    middle = int(liver_z.mean())
    split[0, :, :, middle - 1 : middle + 2][split[0, :, :, middle - 1 : middle + 2] == 1] = 0
    report = assess_volume(image, cropped.with_array(split), CARD)
    edge = report.get("edge:liver")
    assert edge.verdict == "warn" and "head edge" in edge.reason and "lower bound" in edge.reason
    assert report.get("pieces:liver").verdict == "warn" and report.get("pieces:liver").value == 2
    assert report.get("edge:spleen").verdict in ("ok", "warn")  # measured, whatever the crop left of it


def test_an_image_outside_the_models_window_fails_as_meaningless() -> None:
    case = make_ct_phantom(seed=16)
    shifted = case.image.with_array(case.image.array + 3000.0)  # a wrong rescale intercept
    report = assess_volume(shifted, case.labels, CARD)
    assert report.verdict == "fail"
    assert report.flagged()[0].name == "fit:intensity" and "blank" in report.reason


def test_a_missing_organ_warns_and_the_checks_never_change_the_labels() -> None:
    case = make_ct_phantom(seed=17)
    array = np.asarray(case.labels.array).copy()
    array[array == 2] = 0
    labels = case.labels.with_array(array)
    before = array.copy()
    report = assess_volume(case.image, labels, CARD)
    assert report.get("volume:spleen").verdict == "warn" and report.get("volume:spleen").value == 0.0
    assert "No spleen was found" in report.get("volume:spleen").reason
    np.testing.assert_array_equal(np.asarray(labels.array), before)
