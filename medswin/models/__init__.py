"""medswin.models: registry, model cards, checkpoints and key maps for the Swin family.

Architectures: ``swin_unetr`` / ``swin_unetr_v2`` (MONAI SwinUNETR), ``swin_unet`` and
``attention_swin_unet`` (2D), ``swin_x2s`` (2D->3D). Importing this package does not import torch.
"""

from __future__ import annotations

from medswin._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "medswin.models.card": ("ModelCard", "Region", "list_presets", "load_card", "preset_card"),
        "medswin.models.checkpoints": (
            "LoadReport",
            "import_checkpoint",
            "load_checkpoint",
            "load_foreign_weights",
            "read_checkpoint_card",
            "read_state_dict",
            "save_checkpoint",
        ),
        "medswin.models.fit": ("FitWarning", "check_fit"),
        "medswin.models.key_maps": ("list_key_maps", "official_key_map", "register_key_map"),
        "medswin.models.registry": ("create_model", "list_models", "model_config", "register_model"),
        "medswin.models.resolve": ("resolve_model",),
    },
)
