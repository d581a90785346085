"""Weight decay as the official runs apply it: Swin-X2S recipes exempt 1-D parameters (biases, norms)
and relative-position tables (timm's groups); the SwinUNETR recipes decay every parameter, as theirs do."""

from __future__ import annotations

from pathlib import Path

import torch

from medswin.models.card import preset_card
from medswin.training.config import load_pipeline
from medswin.training.objectives import build_optimizer

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines" / "train"


def test_swin_x2s_recipes_exempt_what_the_official_runs_exempt() -> None:
    recipes = sorted(PIPELINES.glob("x2s_*_swin_x2s_base.yaml"))
    assert len(recipes) == 9
    for path in recipes:
        optimizer = load_pipeline(path).settings["optimizer"]
        assert optimizer["no_weight_decay"] == ["1d", "relative_position_bias_table"], path.name
    assert load_pipeline(PIPELINES / "btcv_swin_unetr.yaml").settings["optimizer"]["no_weight_decay"] == []


def test_an_adamw_step_decays_only_the_decayed_parameters() -> None:
    torch.manual_seed(0)
    model = preset_card("demo-x2s").create_model()
    settings = load_pipeline(next(PIPELINES.glob("x2s_ctpelvic1k_*.yaml"))).settings["optimizer"]
    optimizer = build_optimizer({**settings, "lr": 0.1}, model)
    names = {id(p): n for n, p in model.named_parameters()}
    free = {
        names[id(p)]
        for group in optimizer.param_groups
        if group["weight_decay"] == 0
        for p in group["params"]
    }
    decayed = {
        names[id(p)] for group in optimizer.param_groups if group["weight_decay"] > 0 for p in group["params"]
    }
    assert free and decayed and free.isdisjoint(decayed) and len(free | decayed) == len(names)
    assert any(n.endswith("relative_position_bias_table") for n in free)
    assert any(n.endswith("norm1.weight") for n in free) and any(n.endswith(".bias") for n in free)
    assert any("position_embeddings" in n for n in decayed)  # the official runs decay these
    assert all(model.get_parameter(n).ndim > 1 for n in decayed)

    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for parameter in model.parameters():  # zero gradients: AdamW moves a parameter only by its decay
        parameter.grad = torch.zeros_like(parameter)
    optimizer.step()
    for name, parameter in model.named_parameters():
        moved = not torch.equal(parameter, before[name])
        assert moved == (name in decayed and bool(before[name].abs().max() > 0)), name


def test_the_swin_unetr_recipe_decays_everything_like_research_contributions() -> None:
    model = preset_card("demo").create_model()
    settings = load_pipeline(PIPELINES / "btcv_swin_unetr.yaml").settings["optimizer"]
    optimizer = build_optimizer(settings, model)
    assert [g["weight_decay"] for g in optimizer.param_groups] == [settings["weight_decay"]]
