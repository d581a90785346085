"""The quality verdict in napari, Qt-free: each structure's check, the panel's text, the volume CSV's columns."""

from __future__ import annotations

import csv

from napari_medswin._analysis import structure_volumes, write_volumes_csv
from napari_medswin._quality import structure_quality, verdict_html

from medswin.data.phantom import make_ct_phantom
from medswin.models import preset_card
from medswin.qc import assess_volume


def _mirrored_report():
    """The true labels of a phantom mirrored in its array (header unchanged): every sided organ fails."""
    case = make_ct_phantom(shape=(48, 48, 32), spacing=(6.0, 6.0, 8.0), seed=5)
    image = case.image.with_array(case.image.array[:, ::-1].copy())
    labels = case.labels.with_array(case.labels.array[:, ::-1].copy())
    return labels, assess_volume(image, labels, preset_card("demo"))


def test_each_structure_gets_its_own_checks_and_the_case_verdict_lists_every_flagged_reason():
    _, report = _mirrored_report()
    assert report.verdict == "fail"
    verdict, reason = structure_quality(report, "liver")
    assert verdict == "fail" and report.get("sides:liver").reason in reason
    # kidney_left's checks are not the kidney's nor liver's; a name no check carries has none
    assert structure_quality(report, "kidney_left")[0] == report.get("sides:kidney_left").verdict == "fail"
    assert structure_quality(report, "kidney") == ("", "")
    # fit checks judge the image, not a structure
    assert report.get("fit:spacing") is not None and structure_quality(report, "spacing") == ("", "")
    text = verdict_html(report, "CT [demo]")
    assert ">fail</b>" in text and "#c62828" in text
    for check in report.flagged():
        assert check.name in text and check.reason.replace("'", "&#x27;") in text


def test_the_volume_csv_carries_each_structures_check_and_the_case_verdict(tmp_path):
    labels, report = _mirrored_report()
    volumes = structure_volumes(labels, preset_card("demo").label_names())
    path = write_volumes_csv(volumes, tmp_path / "v.csv", model="demo", quality=report)
    with open(path, newline="") as stream:
        rows = {row["name"]: row for row in csv.DictReader(stream)}
    assert rows["liver"]["qc"] == "fail" and report.get("sides:liver").reason in rows["liver"]["qc_reason"]
    assert {row["case_qc"] for row in rows.values()} == {"fail"}
    assert {row["case_qc_reason"] for row in rows.values()} == {report.reason}
    # labels no model predicted: the columns are there, empty
    plain = write_volumes_csv(volumes, tmp_path / "plain.csv")
    with open(plain, newline="") as stream:
        assert {(r["qc"], r["case_qc"]) for r in csv.DictReader(stream)} == {("", "")}
