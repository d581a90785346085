"""The issue's volume scenarios through ``medswin predict -m demo`` and ``medswin report``.

One batch of five phantom CTs as NIfTI files: three normal ones (LPS, RAS, oblique), one mirrored in
its array with the header unchanged, and one with 10 mm slices. The shipped demo model labels by
position more than by anatomy, so on the mirrored case its liver and spleen swap sizes and the
volume checks (not the sides check) must catch it.
"""

from __future__ import annotations

import csv
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from medswin.cli.main import main as medswin
from medswin.data.phantom import make_ct_phantom
from medswin.io import write_image

pytestmark = pytest.mark.slow

NORMAL = {"normal_lps": "LPS", "normal_ras": "RAS", "normal_oblique": "oblique"}


def _write(image, path: Path) -> Path:
    return write_image(image.with_array(np.round(image.array)), path, dtype="int16")


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("qc_batch")
    inputs = root / "in"
    for seed, (name, orientation) in enumerate(NORMAL.items(), start=3000):
        _write(make_ct_phantom(orientation=orientation, seed=seed).image, inputs / f"{name}.nii.gz")
    mirrored = make_ct_phantom(orientation="LPS", seed=3003).image
    _write(mirrored.with_array(mirrored.array[:, ::-1].copy()), inputs / "mirrored.nii.gz")
    thick = make_ct_phantom(shape=(96, 96, 26), spacing=(3.0, 3.0, 10.0), seed=3004).image
    _write(thick, inputs / "thick_10mm.nii.gz")
    out = root / "out"
    assert medswin(["-q", "predict", "-i", str(inputs), "-o", str(out), "-m", "demo", "--preview"]) == 0
    return out


def _record(out: Path, case: str) -> dict:
    return json.loads((out / f"{case}.json").read_text())


def _flagged(record: dict) -> dict[str, str]:
    return {c["name"]: c["reason"] for c in record["qc"]["checks"] if c["verdict"] != "ok"}


def test_the_demo_phantoms_get_ok(batch: Path) -> None:
    for case in NORMAL:
        qc = _record(batch, case)["qc"]
        assert qc["verdict"] == "ok", _flagged(_record(batch, case))
        names = {c["name"] for c in qc["checks"]}
        assert {"fit:spacing", "volume:liver", "sides:liver", "confidence:liver", "pieces:spleen"} <= names


def test_a_mirrored_array_is_flagged_by_the_volumes_of_liver_and_spleen(batch: Path) -> None:
    record = _record(batch, "mirrored")
    assert record["qc"]["verdict"] in ("warn", "fail")
    flagged = _flagged(record)
    assert {"volume:liver", "volume:spleen"} <= set(flagged), flagged
    assert "below the plausible adult range" in flagged["volume:liver"]
    assert "above the plausible adult range" in flagged["volume:spleen"]


def test_thick_slices_warn_that_volumes_are_unreliable_in_record_and_summary(batch: Path) -> None:
    record = _record(batch, "thick_10mm")
    assert record["qc"]["verdict"] == "warn"
    assert "volumes are unreliable" in _flagged(record)["fit:spacing"]
    with open(batch / "summary.csv", newline="") as stream:
        rows = {row["case"]: row for row in csv.DictReader(stream)}
    assert rows["thick_10mm"]["qc"] == "warn" and "volumes are unreliable" in rows["thick_10mm"]["qc_reason"]
    assert rows["mirrored"]["qc"] == record_verdict(batch, "mirrored")
    assert all(rows[case]["qc"] == "ok" and rows[case]["qc_reason"] == "" for case in NORMAL)


def record_verdict(out: Path, case: str) -> str:
    return _record(out, case)["qc"]["verdict"]


class _Page(HTMLParser):
    """What the report holds: case sections in order, images, external references, table columns."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.images: list[str] = []
        self.external: list[str] = []
        self.headers: list[str] = []
        self._in_th = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "section" and values.get("id", "").startswith("case-"):
            self.sections.append(values["id"].removeprefix("case-"))
        if tag == "img":
            self.images.append(values.get("src") or "")
        for key in ("src", "href"):
            target = values.get(key) or ""
            if re.match(r"^(https?:)?//", target) or (tag == "link"):
                self.external.append(target)
        self._in_th = tag == "th"

    def handle_data(self, data: str) -> None:
        if self._in_th and data.strip():
            self.headers.append(data.strip())
            self._in_th = False


def test_the_report_lists_the_flagged_cases_first_self_contained(batch: Path) -> None:
    assert medswin(["report", str(batch)]) == 0
    page_path = batch / "report.html"
    page = _Page()
    page.feed(page_path.read_text(encoding="utf-8"))
    assert set(page.sections[:2]) == {"mirrored", "thick_10mm"}
    assert set(page.sections[2:]) == set(NORMAL)
    assert not page.external
    assert len(page.images) == 5 and all(src.startswith("data:image/jpeg;base64,") for src in page.images)
    assert {"liver mL", "spleen mL", "verdict"} <= set(page.headers)
    # 100 cases of this size stay under 2 MB
    assert page_path.stat().st_size * 20 < 2_000_000


def test_fail_on_qc_exits_1_only_when_asked(tmp_path: Path) -> None:
    case = make_ct_phantom(seed=3005).image
    _write(case.with_array(case.array + 3000.0), tmp_path / "in" / "wrong_intercept.nii.gz")
    out = tmp_path / "out"
    assert medswin(["-q", "predict", "-i", str(tmp_path / "in"), "-o", str(out), "-m", "demo"]) == 0
    assert record_verdict(out, "wrong_intercept") == "fail"
    # a rerun finds the case finished and judges its recorded verdict
    assert (
        medswin(["-q", "predict", "-i", str(tmp_path / "in"), "-o", str(out), "-m", "demo", "--fail-on-qc"])
        == 1
    )
