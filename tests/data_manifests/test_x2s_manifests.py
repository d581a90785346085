"""Swin-X2S dataset manifests: valid Decathlon-style JSON, contiguous labels with background 0."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

MANIFESTS = sorted((Path(__file__).parents[2] / "data_manifests").glob("x2s_*/dataset.json"))
NAMES = {p.parent.name for p in MANIFESTS}


def test_every_swin_x2s_dataset_has_a_manifest() -> None:
    expected = {
        "x2s_totalseg_all",
        "x2s_totalseg_femur",
        "x2s_totalseg_pelvic",
        "x2s_totalseg_spine",
        "x2s_totalseg_rib",
        "x2s_ctpelvic1k",
        "x2s_ctspine1k",
        "x2s_verse19",
        "x2s_ribseg_v2",
    }
    assert expected <= NAMES


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.parent.name)
def test_manifest_is_valid(path: Path) -> None:
    doc = json.loads(path.read_text())
    for key in (
        "name",
        "description",
        "reference",
        "licence",
        "source",
        "modality",
        "labels",
        "tensorImageSize",
    ):
        assert doc.get(key), f"{path}: missing {key}"
    labels = {int(k): v for k, v in doc["labels"].items()}
    assert labels[0] == "background"
    assert sorted(labels) == list(range(len(labels)))  # contiguous from 0
    assert len(set(labels.values())) == len(labels)  # no name twice
    assert doc["out_channels"] == len(labels)
    assert set(doc["modality"]) == {"0", "1"}  # AP and lateral view
    for split in ("numTraining", "numValidation", "numTest"):
        assert isinstance(doc[split], int) and doc[split] > 0


def test_totalseg_all_matches_the_default_model_and_its_subsets() -> None:
    from medswin.models.swin_x2s import SwinX2SConfig

    def names(name: str) -> set[str]:
        return set(
            json.loads((MANIFESTS[0].parents[1] / name / "dataset.json").read_text())["labels"].values()
        )

    everything = names("x2s_totalseg_all")
    assert len(everything) == SwinX2SConfig().out_channels
    for subset in ("x2s_totalseg_femur", "x2s_totalseg_pelvic", "x2s_totalseg_spine", "x2s_totalseg_rib"):
        assert names(subset) <= everything
