"""medswin.models: registry, model cards, checkpoints and key maps for the Swin family.

Architectures: ``swin_unetr`` / ``swin_unetr_v2`` (MONAI SwinUNETR), ``swin_unet`` and
``attention_swin_unet`` (2D), ``swin_x2s`` (2D->3D). Importing this package does not import torch.
"""

from __future__ import annotations

from medswin.models.card import ModelCard, Region, list_presets, load_card, preset_card
from medswin.models.checkpoints import (
    LoadReport,
    import_checkpoint,
    load_checkpoint,
    load_foreign_weights,
    read_checkpoint_card,
    read_state_dict,
    save_checkpoint,
)
from medswin.models.key_maps import list_key_maps, official_key_map, register_key_map
from medswin.models.registry import create_model, list_models, model_config, register_model
from medswin.models.resolve import resolve_model

__all__ = [
    "ModelCard",
    "Region",
    "LoadReport",
    "create_model",
    "list_models",
    "model_config",
    "register_model",
    "list_presets",
    "preset_card",
    "load_card",
    "save_checkpoint",
    "load_checkpoint",
    "read_checkpoint_card",
    "read_state_dict",
    "load_foreign_weights",
    "import_checkpoint",
    "official_key_map",
    "register_key_map",
    "list_key_maps",
    "resolve_model",
]
