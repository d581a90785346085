"""Safe extraction of zip archives (DICOM series are often shared as one .zip).

A zip from outside is untrusted: a member may try to escape the target folder (``../``, an
absolute path, a drive letter), be a symbolic link, or decompress to far more than it weighs
(a zip bomb: one member, or many small ones that together expand beyond the ratio limit). Every
member is checked *before* anything is written; damaged archives are refused naming the zip.
"""

from __future__ import annotations

import contextlib
import shutil
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from medswin.errors import ImageReadError, MedSwinError

__all__ = [
    "MAX_TOTAL_BYTES",
    "MAX_COMPRESSION_RATIO",
    "check_zip_members",
    "copy_member",
    "extract_zip",
    "extracted_zip",
]

#: refuse archives that expand beyond this many bytes in total (16 GiB: a large whole-body CT).
MAX_TOTAL_BYTES = 16 * 2**30
#: refuse members that expand more than this many times their compressed size (bombs reach 1000+).
MAX_COMPRESSION_RATIO = 200.0
# tiny members (headers, empty files) can have large ratios legitimately
_RATIO_EXEMPT_BYTES = 1 * 2**20


def _expansion(expanded: int, compressed: int, max_ratio: float) -> float | None:
    """The expansion ratio when it marks a zip bomb (above ``max_ratio``, past the small-file
    exemption), else None: one rule for a single member and for a whole archive."""
    ratio = expanded / max(compressed, 1)
    return ratio if expanded > _RATIO_EXEMPT_BYTES and ratio > max_ratio else None


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def check_zip_members(
    archive: zipfile.ZipFile,
    where: Path,
    *,
    max_total_bytes: int = MAX_TOTAL_BYTES,
    max_ratio: float = MAX_COMPRESSION_RATIO,
) -> list[zipfile.ZipInfo]:
    """The regular-file members of ``archive``; raise :class:`ImageReadError` on any unsafe member."""
    members: list[zipfile.ZipInfo] = []
    total = compressed = 0
    for info in archive.infolist():
        name = info.filename.replace("\\", "/")
        if not name:
            raise ImageReadError(f"{where}: a zip member has an empty name; the archive is damaged")
        parts = PurePosixPath(name).parts
        if name.startswith("/") or (parts and ":" in parts[0]) or ".." in parts:
            raise ImageReadError(
                f"{where}: zip member {info.filename!r} points outside the archive folder "
                "(absolute path or '..'); refusing to extract this archive"
            )
        if _is_symlink(info):
            raise ImageReadError(
                f"{where}: zip member {info.filename!r} is a symbolic link; refusing to extract"
            )
        if info.is_dir():
            continue
        total += info.file_size
        if total > max_total_bytes:
            raise ImageReadError(
                f"{where}: archive expands to more than {max_total_bytes / 2**30:.1f} GiB; "
                "refusing to extract (unzip it yourself if it is genuine)"
            )
        ratio = _expansion(info.file_size, info.compress_size, max_ratio)
        if ratio is not None:
            raise ImageReadError(
                f"{where}: zip member {info.filename!r} expands {ratio:.0f}× "
                f"(limit {max_ratio:.0f}×); this looks like a zip bomb, refusing to extract"
            )
        members.append(info)
        compressed += info.compress_size
    # Many small members can each pass the ratio check and still make a bomb together.
    ratio = _expansion(total, compressed, max_ratio)
    if ratio is not None:
        raise ImageReadError(
            f"{where}: {len(members)} members expand {ratio:.0f}× in total "
            f"(limit {max_ratio:.0f}×); this looks like a zip bomb, refusing to extract"
        )
    return members


def copy_member(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    destination: Path,
    *,
    where: Path,
    max_bytes: int,
    limit_text: str = "",
    max_ratio: float = MAX_COMPRESSION_RATIO,
    error: type[MedSwinError] = ImageReadError,
) -> Path:
    """Write one member of ``archive`` to ``destination``, within ``max_bytes``.

    The declared size and compression ratio are checked before a byte is written, the actual
    bytes while copying (the zip directory can lie); a refused member leaves no file behind.
    ``error`` is the exception type raised (callers outside image reading keep their own);
    ``limit_text`` says where the limit comes from.
    """
    limit = limit_text or f"{max_bytes:,}-byte limit"
    member = info.filename
    if info.file_size > max_bytes:
        raise error(
            f"{where}: zip member {member!r} expands to {info.file_size:,} bytes, more than the {limit}; "
            "refusing to extract it"
        )
    ratio = _expansion(info.file_size, info.compress_size, max_ratio)
    if ratio is not None:
        raise error(
            f"{where}: zip member {member!r} expands {ratio:.0f}× "
            f"(limit {max_ratio:.0f}×); this looks like a zip bomb, refusing to extract it"
        )
    try:
        with archive.open(info) as source, open(destination, "wb") as sink:
            if _copy_within(source, sink, max_bytes) < 0:
                raise error(
                    f"{where}: zip member {member!r} expands beyond its declared size and the {limit}; "
                    "refusing it"
                )
    except BaseException as failure:
        Path(destination).unlink(missing_ok=True)
        if isinstance(failure, (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError)):
            raise error(f"{where}: zip member {member!r} is unreadable ({failure})") from None
        raise
    return Path(destination)


def _copy_within(source: object, sink: object, budget: int) -> int:
    """Copy ``source`` to ``sink`` in 1 MiB blocks; returns the budget left, negative when it ran out (stops there)."""
    while chunk := source.read(2**20):  # type: ignore[attr-defined]
        budget -= len(chunk)
        if budget < 0:
            return budget
        sink.write(chunk)  # type: ignore[attr-defined]
    return budget


def extract_zip(
    path: str | Path,
    target: str | Path,
    *,
    max_total_bytes: int = MAX_TOTAL_BYTES,
    max_ratio: float = MAX_COMPRESSION_RATIO,
) -> list[Path]:
    """Extract the regular files of zip ``path`` under folder ``target`` after checking every member.

    Returns the extracted file paths in archive order. Raises :class:`ImageReadError` naming the
    zip for unreadable or unsafe archives; nothing is written when a check fails.
    """
    path, target = Path(path), Path(target)
    try:
        with zipfile.ZipFile(path) as archive:
            members = check_zip_members(archive, path, max_total_bytes=max_total_bytes, max_ratio=max_ratio)
            root = target.resolve()
            written: list[Path] = []
            budget = max_total_bytes
            for info in members:
                destination = (root / info.filename.replace("\\", "/")).resolve()
                if not destination.is_relative_to(root):
                    raise ImageReadError(f"{path}: zip member {info.filename!r} escapes the target folder")
                destination.parent.mkdir(parents=True, exist_ok=True)
                # Copy with a byte budget: the sizes in the zip directory can lie.
                with archive.open(info) as source, open(destination, "wb") as sink:
                    budget = _copy_within(source, sink, budget)
                if budget < 0:
                    raise ImageReadError(f"{path}: archive expands beyond its declared size; refusing it")
                written.append(destination)
            return written
    except zipfile.BadZipFile as error:
        raise ImageReadError(f"{path}: not a valid zip archive ({error})") from error
    except (OSError, EOFError, RuntimeError, zlib.error, ValueError, NotImplementedError) as error:
        # zlib.error: damaged deflate data; NotImplementedError: a compression method zipfile lacks
        raise ImageReadError(
            f"{path}: could not extract the zip archive ({type(error).__name__}: {error})"
        ) from error


@contextlib.contextmanager
def extracted_zip(path: str | Path, *, scratch: str | Path | None = None, **limits: float) -> Iterator[Path]:
    """Extract zip ``path`` into a private temporary folder, yield it, and delete it afterwards.

    ``scratch``: the folder to make that temporary folder in (default: the system's). A process
    killed mid-way cannot delete it; a caller that cleans ``scratch`` on its next run (a batch's
    work area) keeps extracted patient data from lingering.
    """
    try:
        folder = Path(tempfile.mkdtemp(prefix="medswin-zip-", dir=scratch))
    except OSError as error:
        raise ImageReadError(f"{path}: cannot extract the zip archive ({error.strerror or error})") from error
    try:
        extract_zip(path, folder, **limits)  # type: ignore[arg-type]
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
