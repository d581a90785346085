"""``medswin report``: parsed, and rendered in headless Chromium, on records written the batch's way.

The records come from ``write_case_outputs`` with the true labels of phantom CTs as predictions
(no network: fast), their quality from ``assess_volume``: two normal phantoms (``ok``), one cut by
the scan's edge (the vertebra, ``warn``), one mirrored with an anatomy-following prediction (``fail``, sides),
and one case that did not run (only in ``summary.csv``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from medswin.batch import CaseOutcome, write_summary
from medswin.batch.outputs import read_record, write_case_outputs
from medswin.cli.main import main as medswin
from medswin.data.phantom import make_ct_phantom
from medswin.inference.predictor import Prediction
from medswin.io import Image
from medswin.models import preset_card
from medswin.qc import assess_volume

CARD = preset_card("demo")


def _case(folder: Path, case_id: str, image: Image, labels: Image, preview: bool) -> CaseOutcome:
    prediction = Prediction(labels, None, {"total": 1.0}, CARD, quality=assess_volume(image, labels, CARD))
    kinds = ["nifti", *(["preview"] if preview else [])]
    record = write_case_outputs(case_id, image, prediction, folder, kinds, settings={"model": CARD.id})
    return CaseOutcome(case_id, "done", 1.0, record=record)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    outcomes = []
    for index, orientation in enumerate(("LPS", "oblique")):
        case = make_ct_phantom(orientation=orientation, seed=40 + index)
        outcomes.append(_case(out, f"normal_{index}", case.image, case.labels, preview=index == 0))
    mirrored = make_ct_phantom(seed=42)
    flip = (slice(None), slice(None, None, -1))
    outcomes.append(
        _case(
            out,
            "mirrored",
            mirrored.image.with_array(mirrored.image.array[flip].copy()),
            mirrored.labels.with_array(mirrored.labels.array[flip].copy()),
            preview=True,
        )
    )
    cut = make_ct_phantom(seed=43)
    top = slice(0, 48)  # the scan stops at slice 48 of 64: the vertebra runs out of it
    image, labels = cut.image, cut.labels
    cropped = Image(
        image.array[..., top].copy(), image.spacing, image.origin, image.direction, "intensity", {}
    )
    cropped_labels = Image(
        labels.array[..., top].copy(), image.spacing, image.origin, image.direction, "label"
    )
    outcomes.append(_case(out, "cut_off", cropped, cropped_labels, preview=False))
    outcomes.append(CaseOutcome("unreadable", "failed", 0.1, "unreadable.nii.gz: not a NIfTI file"))
    write_summary(out / "summary.csv", outcomes, CARD.labels)
    assert medswin(["report", str(out)]) == 0
    return out


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.images: list[str] = []
        self.external: list[str] = []
        self.rows: list[list[tuple[str | None, str]]] = []
        self._cell: tuple[str | None, list[str]] | None = None
        self._in_overview = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "section" and (values.get("id") or "").startswith("case-"):
            self.sections.append(values["id"].removeprefix("case-"))
        if tag == "img":
            self.images.append(values.get("src") or "")
        if tag in ("link", "iframe") or (tag == "script" and values.get("src")):
            self.external.append(tag)
        for key in ("src", "href"):
            if re.match(r"^(https?:)?//", values.get(key) or ""):
                self.external.append(values[key])
        if tag == "table" and values.get("id") == "overview":
            self._in_overview = True
        if self._in_overview and tag == "tr":
            self.rows.append([])
        if self._in_overview and tag == "td":
            self._cell = (values.get("data-sort"), [])

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in_overview = False
        if tag == "td" and self._cell is not None:
            self.rows[-1].append((self._cell[0], "".join(self._cell[1]).strip()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell[1].append(data)


def test_the_report_orders_fail_not_run_warn_ok_and_is_self_contained(folder: Path) -> None:
    assert read_record(folder, "mirrored")["qc"]["verdict"] == "fail"
    assert read_record(folder, "cut_off")["qc"]["verdict"] == "warn"
    page = _Page()
    page.feed((folder / "report.html").read_text(encoding="utf-8"))
    assert page.sections == ["mirrored", "unreadable", "cut_off", "normal_0", "normal_1"]
    assert not page.external
    # one thumbnail per case that ran: two previews, two projections of the label map
    assert len(page.images) == 4 and all(src.startswith("data:image/jpeg;base64,") for src in page.images)
    overview = [row for row in page.rows if row]
    assert [row[0][1] for row in overview] == page.sections
    assert [row[1][1] for row in overview] == ["fail", "error", "warn", "ok", "ok"]
    liver = [float(row[2][0]) for row in overview if row[2][0]]  # data-sort holds the volume
    assert len(liver) == 4 and all(v > 100 for v in liver)
    text = (folder / "report.html").read_text(encoding="utf-8")
    assert "lies" in text and "the wrong side of the midline" in text
    assert "unreadable.nii.gz: not a NIfTI file" in text


def test_the_report_renders_in_headless_chromium(folder: Path, tmp_path: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("Debian chromium is not installed (make system-deps installs it)")
    shot = tmp_path / "report.png"
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--window-size=1280,1600",
    ]
    subprocess.run(
        [*command, f"--screenshot={shot}", (folder / "report.html").resolve().as_uri()],
        check=True,
        capture_output=True,
        timeout=120,
    )
    from PIL import Image as PILImage

    with PILImage.open(shot) as image:
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.shape[:2] == (1600, 1280)
    colours = {tuple(int(c) for c in p) for p in pixels.reshape(-1, 3)}
    # the verdict badges are drawn in their colours: fail red, warn orange, ok green
    assert {(198, 40, 40), (239, 143, 0), (46, 125, 50)} <= colours


def test_a_folder_without_records_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert medswin(["report", str(tmp_path)]) == 2
    assert "holds no case records" in capsys.readouterr().err
