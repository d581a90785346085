"""Fixture files laid out like the published ones (tiny configs) and registry entries naming them."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from monai.networks.nets import SwinUNETR
from weights_server import FixtureServer

from medswin.models import preset_card

BTCV_FILE = "swin_unetr.base_5000ep_f48_lr2e-4_pretrained.pt"
BUNDLE_FILE = "model_swin_unetr_btcv_segmentation_v1.pt"
BRATS_FILE = "fold0_f48_ep300_4gpu_dice0_8854.zip"
RELEASE = "/Project-MONAI/MONAI-extra-test-data/releases/download/0.8.1/"
ZOO = "/assets/Clara/monai/tutorials/model_zoo/"
ROI = (64, 32, 32)
PROXIED_URL = "http://weights.medswin-test.invalid/proxied.pt"  # a name no resolver knows


def saved(obj: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


@dataclass
class Fixtures:
    """Bytes of each fixture file and the state_dicts they hold (MONAI 1.6 key names)."""

    btcv: bytes
    btcv_state: dict
    bundle: bytes
    brats_zip: bytes
    bundle_zip: bytes
    ssl: bytes
    ssl_encoder: dict


def tiny_net(seed: int, **kwargs: int) -> SwinUNETR:
    torch.manual_seed(seed)
    net = SwinUNETR(feature_size=12, **kwargs)
    with torch.no_grad():  # non-trivial norms, so every merged sub-grid matters
        for name, value in net.state_dict().items():
            if "downsample.norm" in name:
                value.uniform_(0.5, 1.5) if name.endswith("weight") else value.uniform_(-0.5, 0.5)
    return net


def bundle_zip_bytes(model_pt: bytes, *, monai_version: str = "1.4.0") -> bytes:
    """A model-zoo style bundle zip (swin_unetr_btcv_segmentation/configs, models) around ``model_pt``."""
    labels = ["background", "spleen", "Right Kidney", "Left Kideny", "Gallbladder", "Esophagus", "Liver"]
    labels += ["Stomach", "Aorta", "IVC", "Portal and Splenic Veins", "Pancreas"]
    labels += ["Right adrenal gland", "Left adrenal gland"]
    metadata = {
        "version": "0.5.6",
        "monai_version": monai_version,
        "name": "Swin UNETR BTCV segmentation",
        "task": "BTCV multi-organ segmentation",
        "description": "A pre-trained model for volumetric (3D) multi-organ segmentation from CT image",
        "authors": "MONAI team",
        "copyright": "Copyright (c) MONAI Consortium",
        "eval_metrics": {"mean_dice": 0.82},
        "intended_use": "This is an example, not to be used for diagnostic purposes",
        "network_data_format": {
            "inputs": {
                "image": {"type": "image", "modality": "CT", "num_channels": 1, "channel_def": {"0": "image"}}
            },
            "outputs": {
                "pred": {"num_channels": 14, "channel_def": {str(i): n for i, n in enumerate(labels)}}
            },
        },
    }
    inference = {
        "bundle_root": ".",
        "checkpoint": "$@bundle_root + '/models/model.pt'",
        "network_def": {
            "_target_": "SwinUNETR",
            "spatial_dims": 3,
            "img_size": 96,
            "in_channels": 1,
            "out_channels": 14,
            "feature_size": 12,
            "use_checkpoint": False,
        },
        "preprocessing": {
            "_target_": "Compose",
            "transforms": [
                {"_target_": "LoadImaged", "keys": "@image_key", "reader": "ITKReader"},
                {"_target_": "EnsureChannelFirstd", "keys": "@image_key"},
                {"_target_": "Orientationd", "keys": "@image_key", "axcodes": "RAS"},
                {"_target_": "Spacingd", "keys": "@image_key", "pixdim": [1.5, 1.5, 2.0], "mode": "bilinear"},
                {
                    "_target_": "ScaleIntensityRanged",
                    "keys": "@image_key",
                    "a_min": -175,
                    "a_max": 250,
                    "b_min": 0.0,
                    "b_max": 1.0,
                    "clip": True,
                },
                {"_target_": "EnsureTyped", "keys": "@image_key"},
            ],
        },
        "inferer": {
            "_target_": "SlidingWindowInferer",
            "roi_size": list(ROI),
            "sw_batch_size": 4,
            "overlap": 0.5,
        },
        "postprocessing": {  # the model-zoo bundle's: probabilities go back through the preprocessing
            "_target_": "Compose",
            "transforms": [
                {"_target_": "Activationsd", "keys": "pred", "softmax": True},
                {
                    "_target_": "Invertd",
                    "keys": "pred",
                    "transform": "@preprocessing",
                    "orig_keys": "@image_key",
                    "meta_key_postfix": "meta_dict",
                    "nearest_interp": False,
                    "to_tensor": True,
                },
                {"_target_": "AsDiscreted", "keys": "pred", "argmax": True},
                {
                    "_target_": "SaveImaged",
                    "keys": "pred",
                    "output_dir": "@output_dir",
                    "output_dtype": "$numpy.float32",
                    "output_postfix": "trans",
                },
            ],
        },
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        root = "swin_unetr_btcv_segmentation/"
        archive.writestr(root + "configs/metadata.json", json.dumps(metadata, indent=4))
        archive.writestr(root + "configs/inference.json", json.dumps(inference, indent=4))
        archive.writestr(root + "models/model.pt", model_pt)
        archive.writestr(root + "docs/README.md", "# Swin UNETR BTCV\n")
        archive.writestr(
            root + "LICENSE",
            "\n                                 Apache License\n                           Version 2.0, "
            "January 2004\n                        http://www.apache.org/licenses/\n",
        )
    return buffer.getvalue()


def tiny_card(tmp: Path, preset: str) -> str:
    card = preset_card(preset)
    card = card.replace(id=f"{preset}_tiny", config={**card.config, "feature_size": 12}, roi_size=ROI)
    path = tmp / f"{preset}_tiny.json"
    path.write_text(card.to_json())
    return path.name


def entry(
    name: str, card: str, file_name: str, url: str, *, file: dict | None = None, **extra: object
) -> dict:
    """A registry entry for a fixture file; ``file`` adds published facts (md5, size, member)."""
    published = {"name": file_name, "urls": [url], "size": None, "md5": None, "sha256": None, **(file or {})}
    return {
        "name": name,
        "kind": "segmentation",
        "task": f"test fixture for {name}",
        "card": card,
        "config": {"feature_size": 12},
        "key_map": "swin_unetr_research",
        "legacy_merging": True,
        "legacy_merging_reason": "fixture of a MONAI <= 1.4 file",
        "file": published,
        "source": "tests/weights fixture server",
        "license": "Apache-2.0",
        "score": {"value": 0.5, "text": "fixture"},
        **extra,
    }


@dataclass
class Site:
    server: FixtureServer
    fixtures: Fixtures
    registry: Path
    home: Path
