"""``medswin predict -m NAME`` and ``medswin weights``: pull, verify, convert, cache, offline, mirror, errors.

Every byte comes from a loopback server the test starts (tests/weights/weights_server.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from weights_factory import BRATS_FILE, BTCV_FILE, PROXIED_URL, RELEASE, Site

from medswin.cli.main import main
from medswin.data.phantom import make_ct_phantom
from medswin.io import read_image, write_image
from medswin.models import load_checkpoint, read_checkpoint_card

BTCV_PATH = RELEASE + BTCV_FILE


def _ct(tmp_path: Path) -> Path:
    case = make_ct_phantom(shape=(40, 36, 24), spacing=(1.2, 0.9, 2.5), orientation="LPS", seed=4)
    return write_image(case.image, tmp_path / "ct.nii.gz", dtype=np.int16)


def _predict(ct: Path, out: Path) -> int:
    return main(["-q", "predict", "-i", str(ct), "-o", str(out), "-m", "swin_unetr_btcv"])


def test_predict_pulls_once_resumes_a_broken_transfer_then_runs_offline(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ct = _ct(tmp_path)
    site.server.truncate_once.add(BTCV_PATH)  # the first transfer stops half-way
    assert _predict(ct, tmp_path / "out1") == 0
    labels = read_image(tmp_path / "out1" / "ct.nii.gz", kind="label")
    assert labels.same_grid(read_image(ct), atol_mm=1e-5) and labels.array.max() < 14
    # one whole-file request cut short, then one resumed from where it stopped
    half = len(site.fixtures.btcv) // 2
    assert site.server.gets(BTCV_PATH) == [None, f"bytes={half}-"]

    cached = site.home / "weights" / "swin_unetr_btcv.safetensors"
    card = read_checkpoint_card(cached)
    assert card.id == "swin_unetr_btcv" and card.config["legacy_merging"] is True
    assert card.config["feature_size"] == 12
    assert card.provenance["weights_url"] == site.server.url(BTCV_PATH)
    # the source publishes no checksum: the first download's SHA-256 is recorded, and the card says so
    pins = json.loads((site.home / "pins.json").read_text())
    assert "recorded on this first download" in card.provenance["weights_checksum"]
    assert pins[BTCV_FILE]["sha256"] in card.provenance["weights_checksum"]
    assert card.provenance["downloaded"][:4].isdigit()
    assert not list((site.home / "downloads").iterdir())  # no raw or partial file left

    assert _predict(ct, tmp_path / "out2") == 0  # second run: from the cache
    assert len(site.server.gets(BTCV_PATH)) == 2

    monkeypatch.setenv("MEDSWIN_OFFLINE", "1")
    assert _predict(ct, tmp_path / "out3") == 0
    assert np.array_equal(read_image(tmp_path / "out3" / "ct.nii.gz", kind="label").array, labels.array)
    assert main(["weights", "path", "swin_unetr_btcv"]) == 0
    assert capsys.readouterr().out.strip() == str(cached)

    monkeypatch.setenv("MEDSWIN_HOME", str(tmp_path / "empty_home"))
    assert _predict(ct, tmp_path / "out4") == 2
    err = capsys.readouterr().err
    assert "MEDSWIN_OFFLINE=1" in err and f"medswin weights import {BTCV_FILE} --as swin_unetr_btcv" in err
    assert len(site.server.gets(BTCV_PATH)) == 2  # offline never touched the network
    assert not (tmp_path / "out4").exists()


def test_wrong_checksum_deletes_the_download_and_caches_nothing(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["weights", "pull", "wrong_checksum"]) == 2
    err = capsys.readouterr().err
    assert "corrupted.pt" in err and "does not match the published 00000000" in err and "deleted" in err
    assert not list((site.home / "downloads").iterdir())
    assert not (site.home / "weights" / "wrong_checksum.safetensors").exists()


def test_published_checksum_is_checked_and_named(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["weights", "pull", "swin_unetr_btcv_bundle"]) == 0
    path = Path(capsys.readouterr().out.split(": ", 1)[1].strip())
    card = read_checkpoint_card(path)
    assert (
        "(published)" in card.provenance["weights_checksum"] and "md5" in card.provenance["weights_checksum"]
    )


def test_a_changed_file_fails_against_the_first_download_record(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["weights", "pull", "swin_unetr_btcv"]) == 0
    before = (site.home / "weights" / "swin_unetr_btcv.safetensors").read_bytes()
    site.server.files[BTCV_PATH] = site.fixtures.bundle  # the server now serves other bytes
    assert main(["weights", "pull", "swin_unetr_btcv", "--force"]) == 2
    err = capsys.readouterr().err
    assert "recorded at the first download" in err and "nothing was cached" in err
    assert (site.home / "weights" / "swin_unetr_btcv.safetensors").read_bytes() == before


def test_404_and_unreachable_hosts_are_named(
    site: Site, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["weights", "pull", "gone"]) == 2
    err = capsys.readouterr().err
    assert "gone.pt" in err and "HTTP 404" in err
    closed = site.server.base.rsplit(":", 1)[0] + ":9"  # discard port: nothing listens
    monkeypatch.setenv("MEDSWIN_MIRROR", closed)
    assert main(["weights", "pull", "swin_unetr_btcv"]) == 2
    err = capsys.readouterr().err
    assert f"{closed}/{BTCV_FILE}" in err and "cannot connect" in err


def test_mirror_serves_every_file_by_its_published_name(
    site: Site, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    site.server.files["/mirror/" + BRATS_FILE] = site.server.files.pop(RELEASE + BRATS_FILE)
    monkeypatch.setenv("MEDSWIN_MIRROR", site.server.url("/mirror/"))
    assert main(["weights", "pull", "swin_unetr_brats21_fold0"]) == 0
    assert site.server.gets("/mirror/" + BRATS_FILE) == [None] and not site.server.gets(RELEASE + BRATS_FILE)
    path = Path(capsys.readouterr().out.split(": ", 1)[1].strip())
    card = read_checkpoint_card(path)  # the zip's model.pt, converted with the BraTS card
    assert card.activation == "sigmoid" and card.config["in_channels"] == 4 and card.config["legacy_merging"]
    assert card.provenance["weights_url"].startswith(site.server.url("/mirror/"))


def test_list_shows_cached_state_and_scores(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["weights", "pull", "swin_unetr_btcv_bundle"]) == 0
    capsys.readouterr()
    assert main(["weights", "list", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)["models"]}
    assert rows["swin_unetr_btcv_bundle"]["cached"] and not rows["swin_unetr_btcv"]["cached"]
    assert rows["swin_unetr_ssl"]["kind"] == "pretraining"  # shipped entries stay listed beside the fixtures
    assert rows["swin_unetr_btcv_small"]["url"].startswith("https://github.com/Project-MONAI/")
    assert main(["weights", "list"]) == 0
    table = capsys.readouterr().out
    assert "swin_unetr_brats21_fold0" in table and "yes (" in table


def test_offline_pull_and_unknown_names(
    site: Site, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MEDSWIN_OFFLINE", "1")
    assert main(["weights", "pull", "swin_unetr_btcv"]) == 2
    assert "forbids downloading" in capsys.readouterr().err
    assert main(["weights", "pull", "swin_unetr_btcvv"]) == 2
    assert "Did you mean swin_unetr_btcv" in capsys.readouterr().err
    assert main(["weights", "path", "swin_unetr_btcv"]) == 2
    assert "medswin weights pull swin_unetr_btcv" in capsys.readouterr().err
    assert site.server.requests == []


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="watches /proc to see the second process wait")
def test_two_processes_pulling_at_once_download_once(site: Site, tmp_path: Path) -> None:
    site.server.hold.add(BTCV_PATH)  # the first download stops half-way until released
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    argv = [sys.executable, "-m", "medswin", "-q", "weights", "pull", "swin_unetr_btcv"]
    first = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not site.server.gets(BTCV_PATH) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert site.server.gets(BTCV_PATH), "the first process never started its download"
        second = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lock = site.home / "weights" / "swin_unetr_btcv.lock"
        while time.monotonic() < deadline:  # the second process has opened the lock the first one holds
            fds = Path(f"/proc/{second.pid}/fd")
            if any(os.path.realpath(fd) == str(lock) for fd in fds.iterdir()):
                break
            time.sleep(0.05)
        site.server.release.set()
        outputs = [process.communicate(timeout=300) for process in (first, second)]
    finally:
        site.server.release.set()
        first.kill()
    assert [p.returncode for p in (first, second)] == [0, 0], outputs
    assert outputs[0][0] == outputs[1][0]  # both print the same cached file
    assert site.server.gets(BTCV_PATH) == [None]  # downloaded once


def test_pretraining_weights_are_not_a_predictor(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ct = _ct(tmp_path)
    assert main(["predict", "-i", str(ct), "-o", str(tmp_path / "out"), "-m", "swin_unetr_ssl"]) == 2
    assert "fine-tun" in capsys.readouterr().err.lower()


def test_the_standard_proxy_variables_are_used(
    site: Site, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HTTP_PROXY", site.server.base)
    monkeypatch.setenv("NO_PROXY", "")
    assert main(["weights", "pull", "behind_proxy"]) == 0
    assert site.server.gets(PROXIED_URL) == [None]  # the proxy (our server) got the absolute URL
    assert "behind_proxy.safetensors" in capsys.readouterr().out


def test_the_self_supervised_encoder_pulls_into_the_encoder_only(
    site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["weights", "pull", "swin_unetr_ssl"]) == 0
    model, card = load_checkpoint(Path(capsys.readouterr().out.split(": ", 1)[1].strip()))
    report = card.provenance["load_report"]
    assert (
        report.startswith("key map swin_unetr_ssl:") and ", 0 missing" not in report
    )  # decoder left initial
    for key, value in site.fixtures.ssl_encoder.items():
        assert np.array_equal(model.swinViT.state_dict()[key].numpy(), value.numpy()), key
    ct = _ct(tmp_path)
    assert main(["predict", "-i", str(ct), "-o", str(tmp_path / "out"), "-m", "swin_unetr_ssl"]) == 2
    assert "init_from" in capsys.readouterr().err
