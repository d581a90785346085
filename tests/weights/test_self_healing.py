"""The weights cache heals itself: after a bad file, a stalled or lying server, a zip bomb, the genuine
file is accepted; a cached model is readable from a read-only cache.

Every byte comes from the loopback server in tests/weights/weights_server.py; limits are made small
through the environment variables users have (MEDSWIN_READ_TIMEOUT, MEDSWIN_WEIGHTS_MAX_MB ...).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from weights_factory import BRATS_FILE, BTCV_FILE, RELEASE, Site, bundle_zip_bytes, saved, tiny_net

from medswin.cli.main import main
from medswin.models import read_checkpoint_card

BTCV_PATH = RELEASE + BTCV_FILE
BRATS_PATH = RELEASE + BRATS_FILE


def _pull(name: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["-q", "weights", "pull", name])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _pins(site: Site) -> dict:
    path = site.home / "pins.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _accepted_genuine_btcv(site: Site, out: str) -> None:
    """The pull printed the cached checkpoint, converted from the genuine bytes, whose SHA-256 is now pinned."""
    path = Path(out.split(": ", 1)[1].strip())
    genuine = hashlib.sha256(site.fixtures.btcv).hexdigest()
    assert f"sha256 {genuine}" in read_checkpoint_card(path).provenance["weights_checksum"]
    assert _pins(site)[BTCV_FILE]["sha256"] == genuine
    assert not [p.name for p in (site.home / "downloads").iterdir()]  # no partial file or record left


class _Payload:
    """A pickle that runs a shell command when unpickled unsafely."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return os.system, (f"touch {self.marker}",)


@pytest.mark.slow
def test_a_refused_download_leaves_no_pin_and_the_genuine_file_is_then_accepted(
    site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "pwned"
    bad = {
        "malicious pickle": saved({"state_dict": {"x": _Payload(marker)}}),
        "wrong architecture": saved(tiny_net(5, in_channels=1, out_channels=3).state_dict()),
        "random bytes": os.urandom(50_000),
    }
    for kind, body in bad.items():
        site.server.files[BTCV_PATH] = body
        code, _, err = _pull("swin_unetr_btcv", capsys)
        assert code == 2, kind
        assert BTCV_FILE in err and "was refused" in err and "no checksum recorded" in err, (kind, err)
        assert "medswin weights pull swin_unetr_btcv" in err and "Traceback" not in err
        assert _pins(site) == {}, kind  # a refused file is not what later downloads must match
    assert not marker.exists()

    site.server.files[BTCV_PATH] = site.fixtures.btcv
    code, out, err = _pull("swin_unetr_btcv", capsys)
    assert code == 0, err
    _accepted_genuine_btcv(site, out)


def test_a_refused_import_leaves_no_pin_and_the_genuine_file_is_then_accepted(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MEDSWIN_OFFLINE", "1")
    fetched = tmp_path / "fetched" / BTCV_FILE
    fetched.parent.mkdir()
    fetched.write_bytes(os.urandom(40_000))  # a broken copy carried over on a stick
    argv = ["weights", "import", str(fetched), "--as", "swin_unetr_btcv"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "was refused" in err and "your file was left as it is" in err and "no checksum recorded" in err
    assert fetched.is_file() and _pins(site) == {}

    fetched.write_bytes(site.fixtures.btcv)
    assert main(argv) == 0
    assert _pins(site)[BTCV_FILE]["sha256"] == hashlib.sha256(site.fixtures.btcv).hexdigest()
    # a later, different file is refused against that record, and the error says how to recover
    fetched.write_bytes(site.fixtures.bundle)
    assert main([*argv, "--force"]) == 2
    err = capsys.readouterr().err
    assert "recorded at the first download" in err and f"remove the '{BTCV_FILE}' entry from" in err
    assert str(site.home / "pins.json") in err
    assert site.server.requests == []


@pytest.mark.parametrize("announced", [3_000_000_000, 5_000_000], ids=["3GB", "5MB"])
def test_a_lying_content_length_then_a_good_mirror(
    site: Site, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], announced: int
) -> None:
    monkeypatch.setenv("MEDSWIN_DOWNLOAD_ATTEMPTS", "2")
    site.server.lie[BTCV_PATH] = announced  # 1,000 random bytes, then the connection closes
    code, _, err = _pull("swin_unetr_btcv", capsys)
    assert code == 2 and site.server.url(BTCV_PATH) in err
    if announced > 2048 * 10**6:  # over the default size limit: refused at once, nothing kept
        assert f"announces {announced:,} bytes, more than the 2,048 MB limit" in err
        assert site.server.gets(BTCV_PATH) == [None]
        assert not list((site.home / "downloads").iterdir())
    else:  # retried, and the junk is kept as a partial file of that URL
        assert "2 attempts; run again to resume" in err
        assert (site.home / "downloads" / f"{BTCV_FILE}.part").stat().st_size >= 1000

    site.server.files["/mirror/" + BTCV_FILE] = site.fixtures.btcv
    monkeypatch.setenv("MEDSWIN_MIRROR", site.server.url("/mirror/"))
    code, out, err = _pull("swin_unetr_btcv", capsys)
    assert code == 0, err
    assert site.server.gets("/mirror/" + BTCV_FILE) == [None]  # started over, not resumed after the junk
    _accepted_genuine_btcv(site, out)


@pytest.mark.parametrize("ignores_if_range", [False, True], ids=["If-Range", "ETag-of-206"])
def test_a_partial_download_resumes_only_while_the_server_file_is_the_same(
    site: Site, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], ignores_if_range: bool
) -> None:
    monkeypatch.setenv("MEDSWIN_DOWNLOAD_ATTEMPTS", "1")
    site.server.ignore_if_range = ignores_if_range
    site.server.files[BTCV_PATH] = site.fixtures.bundle  # the wrong file, cut off half-way
    site.server.truncate_once.add(BTCV_PATH)
    code, _, err = _pull("swin_unetr_btcv", capsys)
    assert code == 2 and "run again to resume" in err

    site.server.files[BTCV_PATH] = site.fixtures.btcv  # the source now serves the genuine file
    code, out, err = _pull("swin_unetr_btcv", capsys)
    assert code == 0, err
    half = len(site.fixtures.bundle) // 2
    ranges = site.server.gets(BTCV_PATH)
    assert ranges[:2] == [None, f"bytes={half}-"]  # a resume was asked for, with the recorded validator
    assert ranges[2:] == ([None] if ignores_if_range else [])  # a changed ETag in a 206: start over
    _accepted_genuine_btcv(site, out)


def test_an_unchanged_file_resumes_at_the_next_pull(
    site: Site, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MEDSWIN_DOWNLOAD_ATTEMPTS", "1")
    site.server.truncate_once.add(BTCV_PATH)
    assert _pull("swin_unetr_btcv", capsys)[0] == 2
    code, out, err = _pull("swin_unetr_btcv", capsys)
    assert code == 0, err
    assert site.server.gets(BTCV_PATH) == [None, f"bytes={len(site.fixtures.btcv) // 2}-"]
    _accepted_genuine_btcv(site, out)


@pytest.mark.slow  # real seconds of dripping and silence
@pytest.mark.parametrize(
    ("interval", "reason"),
    [(0.1, "stalled: "), (2.5, "no data for 1 s")],
    ids=["one-byte-every-0.1s", "silent-for-2.5s"],
)
def test_a_dripping_mirror_fails_with_the_url_then_the_download_resumes(
    site: Site,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    interval: float,
    reason: str,
) -> None:
    monkeypatch.setenv("MEDSWIN_READ_TIMEOUT", "1")
    monkeypatch.setenv("MEDSWIN_DOWNLOAD_ATTEMPTS", "2")
    site.server.drip.add(BTCV_PATH)  # one byte every `interval` s (for at most 3 s a request)
    site.server.drip_interval = interval
    code, _, err = _pull("swin_unetr_btcv", capsys)
    assert code == 2
    assert site.server.url(BTCV_PATH) in err and reason in err, err
    if reason.startswith("stalled"):
        assert "less than 1,024 bytes/s (MEDSWIN_READ_TIMEOUT=1)" in err
    assert "2 attempts; run again to resume" in err
    assert len(site.server.gets(BTCV_PATH)) == 2
    kept = (site.home / "downloads" / f"{BTCV_FILE}.part").stat().st_size
    assert kept > 0

    site.server.drip.clear()
    code, out, err = _pull("swin_unetr_btcv", capsys)
    assert code == 0, err
    assert site.server.gets(BTCV_PATH)[-1] == f"bytes={kept}-"
    _accepted_genuine_btcv(site, out)


def test_an_overloaded_server_is_retried_after_a_pause(
    site: Site, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MEDSWIN_DOWNLOAD_ATTEMPTS", "3")
    site.server.unavailable[BTCV_PATH] = 3  # one more than the attempts allow
    code, _, err = _pull("swin_unetr_btcv", capsys)
    assert code == 2 and f"{site.server.url(BTCV_PATH)}: HTTP 503 Service Unavailable (3 attempts)" in err, (
        err
    )
    site.server.unavailable[BTCV_PATH] = 2
    code, out, err = _pull("swin_unetr_btcv", capsys)
    assert code == 0, err
    assert site.server.gets(BTCV_PATH) == [None] * 6
    _accepted_genuine_btcv(site, out)


def _bomb_zip(member: str, expands_to: int, *, into: bytes | None = None) -> bytes:
    """A zip whose ``member`` is ``expands_to`` zero bytes, deflated (a few hundred times smaller).

    ``into``: a zip whose other members are kept (a bundle around the bomb).
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        if into is not None:
            with zipfile.ZipFile(io.BytesIO(into)) as source:
                for info in source.infolist():
                    if not info.filename.endswith(member):
                        archive.writestr(info, source.read(info))
                    else:
                        member = info.filename
        with archive.open(member, "w", force_zip64=True) as out:
            block = bytes(1 << 20)
            for _ in range(expands_to >> 20):
                out.write(block)
    return buffer.getvalue()


@pytest.mark.slow
def test_a_zip_bomb_fold_is_refused_before_it_is_written_then_the_genuine_zip_is_accepted(
    site: Site, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bomb = _bomb_zip("model.pt", 64 << 20)
    site.server.files[BRATS_PATH] = bomb
    code, _, err = _pull("swin_unetr_brats21_fold0", capsys)  # default limits: the ratio gives it away
    assert code == 2 and BRATS_FILE in err and "'model.pt' expands" in err and "zip bomb" in err, err
    assert "was refused" in err and "medswin weights pull swin_unetr_brats21_fold0" in err

    monkeypatch.setenv("MEDSWIN_WEIGHTS_MAX_MB", "40")  # the genuine zip weighs 24 MB
    code, _, err = _pull("swin_unetr_brats21_fold0", capsys)
    assert code == 2
    assert (
        f"'model.pt' expands to {64 << 20:,} bytes, more than the 40 MB limit (MEDSWIN_WEIGHTS_MAX_MB)" in err
    )
    assert not list((site.home / "downloads").iterdir())  # neither the zip nor a staged model.pt is left
    assert _pins(site) == {}

    site.server.files[BRATS_PATH] = site.fixtures.brats_zip
    code, out, err = _pull("swin_unetr_brats21_fold0", capsys)
    assert code == 0, err
    assert _pins(site)[BRATS_FILE]["sha256"] == hashlib.sha256(site.fixtures.brats_zip).hexdigest()


def test_a_zip_bomb_bundle_is_refused_then_the_genuine_bundle_imports(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    genuine = bundle_zip_bytes(site.fixtures.bundle)
    bundle = tmp_path / "swin_unetr_btcv_segmentation.zip"
    bundle.write_bytes(_bomb_zip("models/model.pt", 64 << 20, into=genuine))
    monkeypatch.setenv("MEDSWIN_WEIGHTS_MAX_MB", "40")
    assert main(["weights", "import", str(bundle), "--legacy-merging", "yes"]) == 2
    err = capsys.readouterr().err
    assert str(bundle) in err and f"expands to {64 << 20:,} bytes, more than the 40 MB limit" in err, err
    bundle.write_bytes(genuine)
    assert main(["weights", "import", str(bundle), "--legacy-merging", "yes"]) == 0
    assert "swin_unetr_btcv_segmentation" in capsys.readouterr().out


def _read_only_run(home: Path, argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` with ``home`` read-only: a read-only bind mount in a private namespace, else
    (not root) the permission bits; skips where neither can make it read-only."""
    unshare = shutil.which("unshare")
    script = 'mount --bind -o ro "$0" "$0" && exec "$@"'
    probe = [unshare, "-rm", "sh", "-c", script, str(home), "true"] if unshare else None
    if probe and subprocess.run(probe, capture_output=True).returncode == 0:
        return subprocess.run(
            [unshare, "-rm", "sh", "-c", script, str(home), *argv], env=env, capture_output=True, text=True
        )
    if os.geteuid() == 0:
        pytest.skip("needs unshare (user namespaces) or a non-root user to make a folder read-only")
    for folder in [home, *home.rglob("*")]:
        folder.chmod(folder.stat().st_mode & ~0o222)
    try:
        return subprocess.run(argv, env=env, capture_output=True, text=True)
    finally:
        for folder in [home, *home.rglob("*")]:
            folder.chmod(folder.stat().st_mode | 0o200)


def test_a_cached_model_is_pulled_from_a_read_only_cache(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _pull("swin_unetr_btcv", capsys)
    assert code == 0, err
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    pull = [sys.executable, "-m", "medswin", "-q", "weights", "pull"]
    done = _read_only_run(site.home, [*pull, "swin_unetr_btcv"], env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == out  # the cached path, as before
    # a model not yet cached needs a writable cache: a one-line error naming it, no traceback
    done = _read_only_run(site.home, [*pull, "swin_unetr_btcv_bundle"], env)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "cannot take the lock" in done.stderr and "MEDSWIN_HOME" in done.stderr
    done = _read_only_run(site.home, [*pull, "swin_unetr_btcv_bundle"], {**env, "MEDSWIN_OFFLINE": "1"})
    assert done.returncode == 2 and "MEDSWIN_OFFLINE=1 forbids downloading" in done.stderr, done.stderr
    assert site.server.gets(RELEASE + BTCV_FILE) == [None]  # only the first pull downloaded
