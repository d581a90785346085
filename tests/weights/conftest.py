"""The loopback fixture server and an extra registry that names its files under the published names."""

from __future__ import annotations

import hashlib
import io
import json
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

# the legacy-merging standard (merging_oracle) lives beside the model tests
sys.path.insert(0, str(Path(__file__).parents[1] / "models"))

from weights_factory import (  # noqa: E402
    BRATS_FILE,
    BTCV_FILE,
    BUNDLE_FILE,
    PROXIED_URL,
    RELEASE,
    ZOO,
    Fixtures,
    Site,
    bundle_zip_bytes,
    entry,
    saved,
    tiny_card,
    tiny_net,
)
from weights_server import FixtureServer  # noqa: E402


@pytest.fixture(scope="session")
def fixtures() -> Fixtures:
    btcv_net = tiny_net(0, in_channels=1, out_channels=14)
    state = {k: v.clone() for k, v in btcv_net.state_dict().items()}
    # research-contributions layout: DDP prefixes and a numpy scalar beside the weights
    btcv = saved(
        {
            "epoch": 4999,
            "best_acc": np.float64(0.8186),
            "state_dict": {f"module.{k}": v for k, v in state.items()},
        }
    )
    bundle = saved(tiny_net(1, in_channels=1, out_channels=14).state_dict())  # model-zoo: a plain state_dict
    brats_pt = saved(
        {
            "epoch": 299,
            "best_acc": np.float64(0.8854),
            "state_dict": tiny_net(2, in_channels=4, out_channels=3).state_dict(),
        }
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:  # the published fold zips hold a bare model.pt
        archive.writestr("model.pt", brats_pt)
    # the self-supervised encoder: swinViT only, DDP prefix, timm MLP names, no swinViT. prefix
    donor = tiny_net(3, in_channels=1, out_channels=2).swinViT.state_dict()
    ssl_state = {
        "module." + k.replace("linear1", "fc1").replace("linear2", "fc2"): v for k, v in donor.items()
    }
    ssl = saved({"epoch": 100000, "state_dict": ssl_state})
    return Fixtures(btcv, state, bundle, buffer.getvalue(), bundle_zip_bytes(bundle), ssl, dict(donor))


@pytest.fixture
def site(tmp_path: Path, fixtures: Fixtures, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    """A running fixture server, an extra registry naming its files under the published names, online."""
    folder = tmp_path / "registry"
    folder.mkdir()
    btcv_card, brats_card = tiny_card(folder, "swin_unetr_btcv"), tiny_card(folder, "swin_unetr_brats21")
    with FixtureServer() as server:
        server.files[RELEASE + BTCV_FILE] = fixtures.btcv
        server.files[ZOO + BUNDLE_FILE] = fixtures.bundle
        server.files[RELEASE + BRATS_FILE] = fixtures.brats_zip
        server.files[RELEASE + "corrupted.pt"] = fixtures.bundle
        server.files[RELEASE + "model_swinvit.pt"] = fixtures.ssl
        # reached only through a proxy: the request line then carries the whole URL
        server.files[PROXIED_URL] = fixtures.bundle
        md5 = hashlib.md5(fixtures.bundle).hexdigest()
        entries = [
            entry("swin_unetr_btcv", btcv_card, BTCV_FILE, server.url(RELEASE + BTCV_FILE)),
            entry(
                "swin_unetr_btcv_bundle",
                btcv_card,
                BUNDLE_FILE,
                server.url(ZOO + BUNDLE_FILE),
                file={"md5": md5, "size": len(fixtures.bundle)},
            ),
            entry(
                "swin_unetr_brats21_fold0",
                brats_card,
                BRATS_FILE,
                server.url(RELEASE + BRATS_FILE),
                config={},
                file={"member": "model.pt"},
            ),
            entry(
                "wrong_checksum",
                btcv_card,
                "corrupted.pt",
                server.url(RELEASE + "corrupted.pt"),
                file={"md5": "0" * 32},
            ),
            entry("gone", btcv_card, "gone.pt", server.url(RELEASE + "gone.pt")),
            entry("behind_proxy", btcv_card, "proxied.pt", PROXIED_URL),
            entry(
                "swin_unetr_ssl",
                btcv_card,
                "model_swinvit.pt",
                server.url(RELEASE + "model_swinvit.pt"),
                kind="pretraining",
                key_map="swin_unetr_ssl",
                partial=True,
            ),
        ]
        registry = folder / "registry.json"
        registry.write_text(json.dumps({"schema_version": 1, "entries": entries}))
        home = tmp_path / "home"
        monkeypatch.setenv("MEDSWIN_WEIGHTS_REGISTRY", str(registry))
        monkeypatch.setenv("MEDSWIN_HOME", str(home))
        monkeypatch.delenv("MEDSWIN_OFFLINE", raising=False)
        monkeypatch.setenv("MEDSWIN_RETRY_BACKOFF", "0.05")  # retries as in real use, without the pauses
        for proxy in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
            monkeypatch.delenv(proxy, raising=False)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        yield Site(server, fixtures, registry, home)
