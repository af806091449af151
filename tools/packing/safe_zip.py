"""Read a user's zip without extracting it and without trusting it.

Nothing is ever written to disk. Every entry is screened before a byte of it is decompressed:
unsafe names (absolute, ``..``, backslashes), symlinks, encryption, exotic compression, duplicate
names and zip-bomb shapes (too many entries, an entry or the whole archive too large once
decompressed, or an implausible compression ratio). Reading then goes through a bounded reader
that stops as soon as an entry yields more than it declared.

The limits are far above what a real submission needs: the ImageNet-S919 test set is 27,423 PNGs of
about 2.6 KB each (about 70 MB zipped), and label PNGs are already compressed, so their zip ratio
is close to 1.
"""

from __future__ import annotations

import os
import re
import stat
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tools.errors import SubmissionError

MiB = 1024 * 1024
GiB = 1024 * MiB
_READ_CHUNK = 1 * MiB
_DRIVE = re.compile(r"^[A-Za-z]:")
# Compression methods every unzip (and the server's Python) reads.
_SUPPORTED_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}


class UnsafeZipError(SubmissionError):
    """The zip (or one entry of it) cannot be read safely; the message names it and says why."""


@dataclass(frozen=True)
class ZipLimits:
    """Zip-bomb guards. Defaults leave a 25x margin over an S919 submission."""

    max_zip_bytes: int = 2 * GiB  # the .zip file itself (this also bounds its central directory)
    max_entries: int = 100_000  # S919 test: 27,423 PNGs + 919 folders + 2 files
    # One decompressed entry: label PNGs are KBs; even an uncompressed 4k x 4k RGB PNG is 48 MB.
    max_entry_bytes: int = 64 * MiB
    max_total_bytes: int = 2 * GiB  # all entries decompressed; an S919 submission is ~70 MB
    max_ratio: float = 100.0  # decompressed / compressed; PNGs zip at ~1.2x, bombs at 1000x+
    ratio_min_bytes: int = 1 * MiB  # the ratio is only judged on entries larger than this


DEFAULT_LIMITS = ZipLimits()


@dataclass
class ZipScan:
    """The screened entries of a zip.

    ``files``: regular entries safe to read, by name. ``blocked``: entries whose name is safe but
    whose content may not be read (symlink, encrypted, too large, ...), so a layout check still
    knows they are there. ``dirs``: directory entries, without the trailing slash.
    ``problems``: one line per refused entry. ``fatal``: the archive as a whole is refused
    (nothing should be read from it).
    """

    files: dict[str, zipfile.ZipInfo] = field(default_factory=dict)
    blocked: list[str] = field(default_factory=list)
    dirs: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    fatal: bool = False


def open_zip(path: str | os.PathLike[str], limits: ZipLimits = DEFAULT_LIMITS) -> zipfile.ZipFile:
    """Open ``path`` for reading, or raise :class:`UnsafeZipError` with a one-line reason."""
    path = Path(path)
    if not path.is_file():
        raise UnsafeZipError(f"{path}: no such file.")
    size = path.stat().st_size
    if size > limits.max_zip_bytes:
        raise UnsafeZipError(
            f"{path}: {size / MiB:.0f} MB is larger than the {limits.max_zip_bytes / MiB:.0f} MB "
            "a submission can plausibly need; refusing to read it."
        )
    try:
        return zipfile.ZipFile(path, "r")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise UnsafeZipError(
            f"{path}: not a readable zip file ({exc}). It may be truncated (an interrupted "
            "upload/copy) or another format; rebuild it with `luss pack`."
        ) from exc


def name_problem(name: str) -> str | None:
    """Why an entry name could escape or confuse an extraction folder, or ``None`` if it is safe."""
    if "\\" in name:
        return "contains a backslash (a Windows path separator; zip names must use '/')"
    if name.startswith("/") or _DRIVE.match(name):
        return "is an absolute path"
    parts = name.rstrip("/").split("/")
    if ".." in parts:
        return "contains a '..' component (path traversal)"
    if any(p in ("", ".") for p in parts):
        return "has an empty or '.' path component"
    if any(ord(ch) < 32 for ch in name):
        return "contains control characters"
    return None


def content_problem(info: zipfile.ZipInfo, limits: ZipLimits) -> str | None:
    """Why an entry's content may not be read, or ``None``."""
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "is a symbolic link (an extractor would follow it outside the folder)"
    if info.flag_bits & 0x1:
        return "is encrypted (the server cannot read password-protected entries)"
    if info.compress_type not in _SUPPORTED_METHODS:
        return f"uses compression method {info.compress_type}; only stored or deflated are accepted"
    if info.file_size > limits.max_entry_bytes:
        return (
            f"decompresses to {info.file_size / MiB:.1f} MB, over the "
            f"{limits.max_entry_bytes / MiB:.0f} MB limit per entry"
        )
    if info.file_size > limits.ratio_min_bytes and info.file_size > limits.max_ratio * max(
        info.compress_size, 1
    ):
        ratio = info.file_size / max(info.compress_size, 1)
        return f"has compression ratio {ratio:.0f}:1, over the {limits.max_ratio:.0f}:1 limit (zip bomb?)"
    return None


def scan_entries(zf: zipfile.ZipFile, limits: ZipLimits = DEFAULT_LIMITS) -> ZipScan:
    """Screen every entry of ``zf`` from the central directory alone (nothing is decompressed)."""
    scan = ZipScan()
    infos = zf.infolist()
    if len(infos) > limits.max_entries:
        scan.problems.append(
            f"has {len(infos)} entries, over the {limits.max_entries} limit; refusing to read it."
        )
        scan.fatal = True
        return scan
    declared_total = sum(i.file_size for i in infos)
    if declared_total > limits.max_total_bytes:
        scan.problems.append(
            f"decompresses to {declared_total / MiB:.0f} MB in total, over the "
            f"{limits.max_total_bytes / MiB:.0f} MB limit (zip bomb?); refusing to read it."
        )
        scan.fatal = True
        return scan
    counts = Counter(i.filename for i in infos)
    reported: set[str] = set()
    for info in infos:
        name = info.filename
        if name in reported:
            continue
        bad_name = name_problem(name)
        if bad_name:
            scan.problems.append(f"{name!r}: entry name {bad_name}.")
            reported.add(name)
            continue
        if counts[name] > 1:
            # Which copy an extractor keeps is tool-dependent, so neither is trusted.
            scan.problems.append(f"{name}: appears {counts[name]} times in the zip; names must be unique.")
            scan.blocked.append(name.rstrip("/"))
            reported.add(name)
            continue
        bad_content = content_problem(info, limits)
        if bad_content:
            scan.problems.append(f"{name}: entry {bad_content}.")
        if info.is_dir():
            scan.dirs.append(name.rstrip("/"))  # never read, so it still counts as a folder
        elif bad_content:
            scan.blocked.append(name)
        else:
            scan.files[name] = info
    return scan


def read_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limits: ZipLimits = DEFAULT_LIMITS) -> bytes:
    """Decompress one screened entry in memory, never past its declared size or the per-entry limit.

    Raises :class:`UnsafeZipError` on a corrupt, truncated or oversized entry (the CRC is checked).
    """
    limit = min(info.file_size, limits.max_entry_bytes)
    chunks: list[bytes] = []
    total = 0
    try:
        with zf.open(info) as fh:
            while True:
                # Ask for one byte more than allowed, so overflow is seen without reading much past it.
                chunk = fh.read(min(_READ_CHUNK, limit + 1 - total))
                if not chunk:
                    break
                total += len(chunk)
                if total > limit:
                    what = "its declared size" if limit == info.file_size else "the per-entry limit"
                    raise UnsafeZipError(f"{info.filename}: decompresses past {what} of {limit} bytes.")
                chunks.append(chunk)
    except UnsafeZipError:
        raise
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, RuntimeError, NotImplementedError) as exc:
        raise UnsafeZipError(f"{info.filename}: cannot be read from the zip ({exc}); it is corrupt.") from exc
    if total != info.file_size:
        raise UnsafeZipError(
            f"{info.filename}: holds {total} bytes but declares {info.file_size}; the zip is corrupt."
        )
    return b"".join(chunks)
