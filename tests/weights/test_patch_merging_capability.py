"""Whether an import must decide the patch-merging order is the architecture's declared capability
(``register_model(..., patch_merging="monai")``), not its name: a new Swin variant that declares it is
guarded like ``swin_unetr``; one that does not is imported without the question."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from weights_factory import saved, tiny_net

from medswin.cli.main import main
from medswin.models import key_maps, preset_card, read_checkpoint_card, registry
from medswin.models.swin_unetr import SwinUNETRConfig, build_swin_unetr, swin_unetr_research_map

#: a throwaway variant that declares MONAI's patch merging, and one that (wrongly) does not.
DECLARED, UNDECLARED = "swin_unetr_wide_test", "swin_unetr_undeclared_test"


@pytest.fixture
def variants(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    registry.list_models()  # the shipped architectures first, so the copy below holds them
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))  # forgotten after the test
    common = {"spatial_dims": 3, "description": "a test variant"}
    registry.register_model(DECLARED, SwinUNETRConfig, build_swin_unetr, patch_merging="monai", **common)
    registry.register_model(UNDECLARED, SwinUNETRConfig, build_swin_unetr, **common)
    for table in ("_KEY_MAPS", "_DEFAULTS"):
        monkeypatch.setattr(key_maps, table, dict(getattr(key_maps, table)))
    # a variant ships a key map for its published files, as swin_unetr does
    key_maps.register_key_map(
        "swin_variant_test", swin_unetr_research_map, architectures=(DECLARED, UNDECLARED), default=True
    )
    yield


def _card_file(tmp_path: Path, architecture: str) -> Path:
    card = preset_card("swin_unetr_btcv")
    config = {k: v for k, v in card.config.items() if k != "legacy_merging"}
    provenance = {k: v for k, v in card.provenance.items() if k != "legacy_merging"}
    card = card.replace(
        id=f"{architecture}_card",
        architecture=architecture,
        config={**config, "feature_size": 12},
        provenance=provenance,
    )
    path = tmp_path / f"{architecture}.json"
    path.write_text(card.to_json())
    return path


def _pre15_file(tmp_path: Path, **extra: str) -> Path:
    """A SwinUNETR state_dict as the research code saved it (MONAI 1.6 key names), no weights registry entry."""
    source = tmp_path / f"trained{len(extra)}.pt"
    source.write_bytes(
        saved({"state_dict": tiny_net(3, in_channels=1, out_channels=14).state_dict(), **extra})
    )
    return source


def _import(source: Path, card: Path, out: Path, *extra: str) -> int:
    return main(["-q", "import-checkpoint", str(source), "--card", str(card), "-o", str(out), *extra])


def test_a_declared_variant_is_refused_without_evidence_and_decided_by_it(
    variants: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    card = _card_file(tmp_path, DECLARED)
    out = tmp_path / "declared.safetensors"
    assert _import(_pre15_file(tmp_path), card, out) == 2
    assert "cannot tell which MONAI version trained it" in capsys.readouterr().err
    assert not out.exists()
    assert _import(_pre15_file(tmp_path, monai_version="1.3.2"), card, out) == 0
    imported = read_checkpoint_card(out)
    assert imported.architecture == DECLARED
    assert imported.config["legacy_merging"] is True
    assert "stores monai_version 1.3.2" in imported.provenance["legacy_merging"]


def test_an_undeclared_variant_is_not_asked(
    variants: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    card = _card_file(tmp_path, UNDECLARED)
    out = tmp_path / "undeclared.safetensors"
    assert _import(_pre15_file(tmp_path), card, out) == 0  # no question, no refusal
    imported = read_checkpoint_card(out)
    assert "legacy_merging" not in imported.provenance and not imported.config.get("legacy_merging")
    assert (
        _import(_pre15_file(tmp_path), card, tmp_path / "flagged.safetensors", "--legacy-merging", "yes") == 2
    )
    assert f"{UNDECLARED}, which has no MONAI patch merging" in capsys.readouterr().err


def test_a_declared_capability_needs_the_config_field() -> None:
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class NoFlag:
        feature_size: int = 12

    with pytest.raises(ValueError, match="needs a legacy_merging field in NoFlag"):
        registry.register_model(
            "no_flag_test", NoFlag, build_swin_unetr, spatial_dims=3, description="x", patch_merging="monai"
        )
    assert "no_flag_test" not in registry.list_models()
