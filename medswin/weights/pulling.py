"""Pull a published model by name: download, verify, convert once, cache; or import a file fetched elsewhere.

The cache holds medswin's own checkpoint (safetensors with the card embedded) per name, so every
later use is a plain :func:`medswin.models.load_checkpoint`. Conversion goes through the one import
path (:func:`medswin.models.import_checkpoint`: safe reading, key map, load report, card checks).
"""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medswin.errors import CheckpointError, WeightsError
from medswin.files import staging_folder
from medswin.weights.cache import (
    OFFLINE_ENV,
    converted_path,
    downloads_folder,
    model_lock,
    offline,
    pins_path,
    read_pins,
    record_pin,
    utc_timestamp,
)
from medswin.weights.download import ProgressFn, console_progress, download_file, file_checksums
from medswin.weights.registry import WeightsEntry, find_weights, get_weights

__all__ = ["cached_weights", "list_cached_weights", "pull", "ensure_weights", "import_file", "convert_file"]

log = logging.getLogger(__name__)


def cached_weights(name: str) -> Path | None:
    """The converted checkpoint of ``name`` when it is in the cache, else ``None``."""
    path = converted_path(name)
    return path if path.is_file() else None


def list_cached_weights() -> list[str]:
    """Names of the checkpoints in the cache (pulled or imported with ``medswin weights import``), sorted."""
    folder = converted_path("_").parent
    if not folder.is_dir():
        return []
    return sorted(p.name[: -len(".safetensors")] for p in folder.glob("*.safetensors") if p.is_file())


def _offline_error(entry: WeightsEntry) -> WeightsError:
    return WeightsError(
        f"{entry.name}: no weights in the cache ({converted_path(entry.name)}) and {OFFLINE_ENV}=1 forbids "
        f"downloading {entry.file.name}. Fetch it on a connected machine ({entry.file.urls[0]}) and run: "
        f"medswin weights import {entry.file.name} --as {entry.name}"
    )


@dataclass(frozen=True)
class _Checked:
    """How a file was checked; ``pin`` is the SHA-256 to record once it has converted (first use)."""

    text: str
    pin: str | None = None


def _verify(entry: WeightsEntry, path: Path, sha256: str, md5: str, *, url: str, delete: bool) -> _Checked:
    """Check size and checksum against the registry (or the recorded first download); records nothing.

    ``delete`` removes a file that fails (a download); a user's own file is left alone.
    """
    published = entry.file

    def fail(problem: str, recovery: str = "") -> WeightsError:
        if delete:
            path.unlink(missing_ok=True)
        what = "the download was deleted; nothing was cached" if delete else "nothing was cached"
        return WeightsError(f"{path.name} ({url}): {problem}; {what}{recovery}")

    size = path.stat().st_size
    if published.size is not None and size != published.size:
        raise fail(f"{size:,} bytes, but {published.size:,} are published")
    known = published.published_checksum
    if known is not None:
        algorithm, expected = known
        actual = sha256 if algorithm == "sha256" else md5
        if actual != expected:
            raise fail(f"{algorithm} {actual} does not match the published {expected}")
        return _Checked(f"{algorithm} {actual} (published)")
    pin = read_pins().get(published.name)
    if pin is not None:
        if pin["sha256"] != sha256:
            raise fail(
                f"sha256 {sha256} differs from {pin['sha256']}, recorded at the first download on {pin['recorded']} "
                "(the source publishes no checksum)",
                f". If the source has really replaced the file, remove the {published.name!r} entry from "
                f"{pins_path()} and pull again",
            )
        return _Checked(
            f"sha256 {sha256} (recorded at the first download on {pin['recorded']}; the source publishes none)"
        )
    return _Checked(
        f"sha256 {sha256} (recorded on this first download, {utc_timestamp()}; the source publishes none)",
        sha256,
    )


def _pin_after_conversion(entry: WeightsEntry, checked: _Checked, url: str, converted: Path) -> None:
    """Record the first download's checksum now that the file has converted and loaded."""
    if checked.pin is None:
        return
    try:
        pin = record_pin(entry.file.name, checked.pin, url)
    except BaseException:
        converted.unlink(missing_ok=True)  # a cache entry whose checksum was never recorded is not kept
        raise
    log.warning(
        "%s: the source publishes no checksum; recorded sha256 %s on this first download (%s)",
        entry.file.name,
        checked.pin,
        pin["recorded"],
    )


@contextmanager
def _weights_inside(path: Path, member: str | None) -> Iterator[Path]:
    """``path`` itself, or ``member`` extracted from the zip ``path`` into a temporary folder.

    The member is refused before it is written when it declares more than the size limit or
    compresses like a bomb, and while it is written when it expands beyond its declared size.
    """
    from medswin.io.archive import copy_member
    from medswin.weights.limits import limits

    if member is None:
        yield path
        return
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise WeightsError(f"{path}: not a readable zip archive ({error})") from None
    with archive:
        names = [n for n in archive.namelist() if not n.endswith("/")]
        matches = [n for n in names if n == member or n.rsplit("/", 1)[-1] == member]
        if len(matches) != 1:
            shown = ", ".join(names[:10])
            raise WeightsError(
                f"{path}: expected exactly one {member} inside, found {len(matches)} (the archive holds: {shown})"
            )
        with staging_folder(downloads_folder() / path.name) as staging:
            limit = limits()
            target = copy_member(
                archive,
                archive.getinfo(matches[0]),
                staging / member.rsplit("/", 1)[-1],
                where=path,
                max_bytes=limit.max_bytes,
                limit_text=limit.max_text,
                error=WeightsError,
            )
            yield target


def convert_file(
    weights: Path,
    card: Any,
    name: str,
    *,
    key_map: str | None,
    partial: bool,
    provenance: dict[str, str],
) -> Path:
    """Import ``weights`` with ``card`` (renamed ``name``) and write the cache entry atomically; returns its path."""
    from medswin.models import import_checkpoint, save_checkpoint

    model, report = import_checkpoint(weights, card, key_map=key_map, partial=partial)
    log.info("%s", report.summary())
    provenance = {
        **card.provenance,
        **provenance,
        "load_report": f"key map {report.key_map}: {len(report.loaded)} loaded, {len(report.missing)} missing, "
        f"{len(report.unexpected)} unexpected",
    }
    target = converted_path(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    return save_checkpoint(model, card.replace(id=name, provenance=provenance), target)


def pull(name: str, *, progress: ProgressFn | None = None, force: bool = False) -> Path:
    """Download, verify and convert registry entry ``name`` into the cache; returns the cached checkpoint.

    Holds the model's lock throughout, so concurrent pulls of one model download it once. Already
    cached (and not ``force``): returns at once without touching the network.
    """
    entry = get_weights(name)
    cached = cached_weights(name)
    if cached is not None and not force:
        return cached  # reading the cache needs no lock (and works on a read-only MEDSWIN_HOME)
    if offline():
        raise _offline_error(entry)
    with model_lock(name):
        cached = cached_weights(name)
        if cached is not None and not force:
            return cached  # another process pulled it while this one waited
        entry.model_card()  # a broken entry fails before the download
        download = download_file(entry.file, progress=progress)
        checked = _verify(entry, download.path, download.sha256, download.md5, url=download.url, delete=True)
        try:
            path = _convert_entry(entry, name, download.path, download.url, checked, pulled=True)
        finally:
            download.path.unlink(missing_ok=True)  # the converted file is what the cache keeps
    log.info("pulled %s into %s", name, path)
    return path


def _convert_entry(
    entry: WeightsEntry, name: str, source: Path, url: str, checked: _Checked, *, pulled: bool
) -> Path:
    """Convert a verified file of registry ``entry`` (or the member of its zip) into the cache, the
    same way for a pull and for an import by hand; ``url`` and ``checked`` go into the provenance.

    A file that does not convert (unsafe pickle, another architecture, not a checkpoint) leaves
    no trace: no cache entry and no recorded checksum, so the genuine file is accepted later.
    """
    try:
        with _weights_inside(source, entry.file.member) as weights:
            path = convert_file(
                weights,
                entry.model_card(),
                name,
                key_map=entry.key_map,
                partial=entry.partial,
                provenance={
                    "weights_url": url,
                    "weights_checksum": f"{entry.file.name}: {checked.text}",
                    "downloaded": utc_timestamp(),
                },
            )
    except CheckpointError as error:
        again = f"medswin weights pull {name}" if pulled else f"medswin weights import FILE --as {name}"
        what = "the download was deleted" if pulled else "your file was left as it is"
        separator = "\n" if "\n" in str(error) else "; "
        raise WeightsError(
            f"{error}{separator}{entry.file.name} from {url} was refused: {what}, nothing was cached and no "
            f"checksum recorded; once the source or mirror serves the genuine file, run '{again}' again"
        ) from None
    _pin_after_conversion(entry, checked, url, path)
    return path


def ensure_weights(name: str, *, show_progress: bool | None = None) -> Path:
    """The cached checkpoint of ``name``, pulling it first (with a progress bar) when it is missing.

    ``show_progress`` None: show the bar unless logging is quieter than INFO (``medswin -q``).
    """
    cached = cached_weights(name)
    if cached is not None:
        return cached
    entry = get_weights(name)
    if offline():
        raise _offline_error(entry)
    log.info("%s is not in the cache; downloading %s", name, entry.file.name)
    if show_progress is None:
        show_progress = logging.getLogger().getEffectiveLevel() <= logging.INFO
    with console_progress(f"{name}: {entry.file.name}", enabled=show_progress) as progress:
        return pull(name, progress=progress)


def import_file(source: Path, name: str, *, legacy_merging: str = "auto", force: bool = False) -> Path:
    """Convert a file fetched elsewhere into the cache under ``name`` (a registry entry or a preset card id).

    A registry entry's file must match its published (or recorded) checksum and converts exactly as a
    pull would; a preset card id converts with that preset's default key map, and SwinUNETR files
    then need ``legacy_merging`` decided (see :func:`medswin.weights.legacy.decide_legacy_merging`).
    """
    from medswin.models.card import has_preset, preset_card
    from medswin.weights.legacy import decide_legacy_merging, with_legacy_merging

    if not source.is_file():
        raise WeightsError(f"{source}: no such file")
    sha256, md5 = file_checksums(source)
    entry = find_weights(name)
    with model_lock(name):
        if cached_weights(name) is not None and not force:
            raise WeightsError(
                f"{name} is already in the cache ({converted_path(name)}); pass --force to replace it"
            )
        if entry is not None:
            wrong = legacy_merging != "auto" and (legacy_merging == "yes") != entry.legacy_merging
            if wrong and entry.legacy_merging is not None:
                raise WeightsError(
                    f"--legacy-merging {legacy_merging} contradicts the registry: {name} needs "
                    f"legacy_merging {entry.legacy_merging} ({entry.legacy_merging_reason})"
                )
            checked = _verify(entry, source, sha256, md5, url=str(source), delete=False)
            where = f"imported by hand from {source.name} (published at {entry.file.urls[0]})"
            return _convert_entry(entry, name, source, where, checked, pulled=False)
        if not has_preset(name):
            raise WeightsError(
                f"--as {name}: neither a published model (medswin weights list) nor a preset card (medswin models)"
            )
        card = preset_card(name)
        flag, why = decide_legacy_merging(legacy_merging, card, source, checksums=(sha256, md5))
        provenance = {
            "weights_checksum": f"{source.name}: sha256 {sha256}",
            "downloaded": f"imported {utc_timestamp()}",
        }
        card = with_legacy_merging(card, flag, why)
        return convert_file(source, card, name, key_map=None, partial=False, provenance=provenance)
