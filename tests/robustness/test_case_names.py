"""``--case-names index|hash``: a patient's name in a folder name reaches no output name or file.

The studies are named after their patients, as PACS exports are. With ``index`` or ``hash`` no file
name in the output folder and no byte of a record or ``summary.csv`` holds the name or id; a rerun
with one more study keeps the finished cases' names (numbers are never reused for another patient)
and a hash is stable within a folder but not across folders (its key lives in the folder).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hostile_factory import PATIENT_ID, ct_case, run_sandboxed, summary_rows, write_series

NAMES = ("Phantom_Test", "Phantom", PATIENT_ID)


def _study(root: Path, name: str, seed: int) -> Path:
    write_series(root / name, ct_case(seed), series_description=f"{name} axial")
    return root / name


def _leaks(folder: Path) -> list[str]:
    found = []
    for path in folder.rglob("*"):
        text = path.name + (path.read_bytes().decode("latin-1") if path.is_file() else "")
        # as a word (letters around it end it): a card's "made-up CT phantoms" is not the patient
        found += [
            f"{path.name}: {n}"
            for n in NAMES
            if re.search(rf"(?<![a-z]){re.escape(n.lower())}(?![a-z])", text.lower())
        ]
    return found


def _predict(inbox: Path, out: Path, model: Path, scheme: str, workspace: Path):
    argv = ["-q", "predict", "-i", str(inbox), "-o", str(out), "-m", str(model), "--case-names", scheme]
    return run_sandboxed([*argv, "--preview"], workspace, [inbox])


def test_index_names_hide_the_patient_and_survive_new_inputs(tmp_path: Path, tiny_checkpoint: Path) -> None:
    inbox = tmp_path / "inbox"
    _study(inbox, f"Phantom_Test_{PATIENT_ID}", 1)
    _study(inbox, "Phantom_Other_0002", 2)
    out = tmp_path / "out"
    run = _predict(inbox, out, tiny_checkpoint, "index", tmp_path)
    assert run.code == 0, run.stderr
    rows = summary_rows(out / "summary.csv")
    assert sorted(rows) == ["case-0001", "case-0002"] and {r["status"] for r in rows.values()} == {"done"}
    assert _leaks(out) == []
    assert (out / "case-0001_preview.png").exists()

    _study(inbox, "Another_Patient_0003", 3)  # sorts first: a fresh numbering would shift every case
    run = _predict(inbox, out, tiny_checkpoint, "index", tmp_path)
    assert run.code == 0, run.stderr
    rows = summary_rows(out / "summary.csv")
    assert {c: r["status"] for c, r in rows.items()} == {
        "case-0001": "skipped",
        "case-0002": "skipped",
        "case-0003": "done",
    }


def test_hash_names_are_stable_in_a_folder_and_differ_between_folders(
    tmp_path: Path, tiny_checkpoint: Path
) -> None:
    inbox = tmp_path / "inbox"
    _study(inbox, f"Phantom_Test_{PATIENT_ID}", 1)
    first, second = tmp_path / "out1", tmp_path / "out2"
    assert _predict(inbox, first, tiny_checkpoint, "hash", tmp_path).code == 0
    [name] = summary_rows(first / "summary.csv")
    assert re.fullmatch(r"case-[0-9a-f]{12}", name) and _leaks(first) == []
    assert _predict(inbox, first, tiny_checkpoint, "hash", tmp_path).code == 0
    assert summary_rows(first / "summary.csv")[name]["status"] == "skipped"
    assert _predict(inbox, second, tiny_checkpoint, "hash", tmp_path).code == 0
    assert list(summary_rows(second / "summary.csv")) != [name]  # another folder, another key


def test_case_names_refuse_an_output_folder_inside_the_inputs(tmp_path: Path, tiny_checkpoint: Path) -> None:
    inbox = tmp_path / "inbox"
    _study(inbox, f"Phantom_Test_{PATIENT_ID}", 1)
    run = _predict(inbox, inbox, tiny_checkpoint, "index", tmp_path)
    assert run.code == 2 and not (inbox / ".medswin").exists()


@pytest.mark.parametrize("scheme", ["index", "hash"])
def test_case_names_and_case_exclude_each_other(tmp_path: Path, tiny_checkpoint: Path, scheme: str) -> None:
    inbox = tmp_path / "inbox"
    _study(inbox, "one", 1)
    argv = ["predict", "-i", str(inbox), "-o", str(tmp_path / "out"), "-m", str(tiny_checkpoint)]
    run = run_sandboxed([*argv, "--case", "x", "--case-names", scheme], tmp_path, [inbox])
    assert run.code == 2 and "--case and --case-names exclude each other" in run.stderr
