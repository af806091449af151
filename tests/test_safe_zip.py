"""tools.packing.safe_zip: screening entries of an untrusted zip and reading them with bounds."""

from __future__ import annotations

import stat
import warnings
import zipfile
from pathlib import Path

import pytest

from tools.packing.safe_zip import (
    DEFAULT_LIMITS,
    UnsafeZipError,
    ZipLimits,
    content_problem,
    name_problem,
    open_zip,
    read_entry,
    scan_entries,
)

MiB = 1024 * 1024


def make_zip(path: Path, entries: dict[str, bytes] | list[tuple[str, bytes]], **info_attrs) -> Path:
    items = entries.items() if isinstance(entries, dict) else entries
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are written on purpose
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in items:
                info = zipfile.ZipInfo(name)
                info.compress_type = zipfile.ZIP_DEFLATED
                for attr, value in info_attrs.get(name, {}).items():
                    setattr(info, attr, value)
                zf.writestr(info, data)
    return path


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("../x.png", ".."),
        ("a/../../x.png", ".."),
        ("/etc/passwd", "absolute"),
        ("C:/x.png", "absolute"),
        ("c:x.png", "absolute"),
        ("a\\b.png", "backslash"),
        ("a//b.png", "empty"),
        ("./a.png", "'.'"),
        ("a/\x01.png", "control"),
    ],
)
def test_unsafe_names(name: str, needle: str) -> None:
    problem = name_problem(name)
    assert problem is not None and needle in problem


@pytest.mark.parametrize("name", ["match.json", "n01/ILSVRC2012_val_00000001.png", "n01/", "a..b/c.png"])
def test_safe_names(name: str) -> None:
    assert name_problem(name) is None


def test_scan_sorts_entries(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "a.zip", {"n01/": b"", "n01/a.png": b"png", "match.json": b"{}"})
    with open_zip(path) as zf:
        scan = scan_entries(zf)
    assert sorted(scan.files) == ["match.json", "n01/a.png"]
    assert scan.dirs == ["n01"] and scan.blocked == [] and scan.problems == [] and not scan.fatal


def test_scan_refuses_bad_entries(tmp_path: Path) -> None:
    entries = [
        ("../up.png", b"x"),
        ("link.png", b"/etc/passwd"),
        ("dup.png", b"1"),
        ("dup.png", b"2"),
        ("bomb.bin", bytes(4 * MiB)),
        ("ok.png", b"fine"),
    ]
    link_attrs = {"create_system": 3, "external_attr": (stat.S_IFLNK | 0o777) << 16}
    path = make_zip(tmp_path / "a.zip", entries, **{"link.png": link_attrs})
    with open_zip(path) as zf:
        scan = scan_entries(zf)
    assert list(scan.files) == ["ok.png"]
    assert sorted(scan.blocked) == ["bomb.bin", "dup.png", "link.png"]
    text = "\n".join(scan.problems)
    for needle in ("path traversal", "symbolic link", "appears 2 times", "compression ratio"):
        assert needle in text
    assert len(scan.problems) == 4  # the duplicate is reported once


def test_content_limits() -> None:
    info = zipfile.ZipInfo("x")
    info.compress_type = zipfile.ZIP_DEFLATED
    info.file_size, info.compress_size = 2 * MiB, 1 * MiB
    assert content_problem(info, DEFAULT_LIMITS) is None
    assert "per entry" in content_problem(info, ZipLimits(max_entry_bytes=MiB))
    info.compress_size = 1000  # 2097:1
    assert "ratio" in content_problem(info, DEFAULT_LIMITS)
    info.file_size = 500_000  # small entries are not judged by ratio (tiny PNGs compress oddly)
    assert content_problem(info, DEFAULT_LIMITS) is None
    info.compress_type = zipfile.ZIP_LZMA
    assert "compression method" in content_problem(info, DEFAULT_LIMITS)


def test_fatal_limits(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "a.zip", {f"f{i}": b"x" * 100 for i in range(5)})
    with open_zip(path) as zf:
        assert scan_entries(zf, ZipLimits(max_entries=4)).fatal
        assert scan_entries(zf, ZipLimits(max_total_bytes=499)).fatal
        assert not scan_entries(zf, ZipLimits(max_entries=5, max_total_bytes=500)).fatal


def test_read_entry_round_trip(tmp_path: Path) -> None:
    data = bytes(range(256)) * 5000  # > one read chunk
    path = make_zip(tmp_path / "a.zip", {"a": data})
    with open_zip(path) as zf:
        assert read_entry(zf, zf.getinfo("a")) == data


def test_read_entry_never_passes_declared_size(tmp_path: Path) -> None:
    """An entry that yields more than its header says is refused, not read to the end."""
    path = make_zip(tmp_path / "a.zip", {"a": bytes(3 * MiB)})
    with open_zip(path) as zf:
        info = zf.getinfo("a")
        info.file_size = 1000  # a lying header
        with pytest.raises(UnsafeZipError):
            read_entry(zf, info)
        info.file_size = 3 * MiB
        with pytest.raises(UnsafeZipError, match="past the per-entry limit"):
            read_entry(zf, info, ZipLimits(max_entry_bytes=MiB))


def test_read_entry_bad_crc(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "a.zip", {"a": b"hello world" * 100})
    data = bytearray(path.read_bytes())
    data[30 + 1 + 3] ^= 0xFF  # inside the compressed data of the first (only) entry
    path.write_bytes(bytes(data))
    with open_zip(path) as zf, pytest.raises(UnsafeZipError, match="corrupt"):
        read_entry(zf, zf.getinfo("a"))


def test_open_zip_errors(tmp_path: Path) -> None:
    with pytest.raises(UnsafeZipError, match="no such file"):
        open_zip(tmp_path / "missing.zip")
    (tmp_path / "text.zip").write_text("hello")
    with pytest.raises(UnsafeZipError, match="not a readable zip"):
        open_zip(tmp_path / "text.zip")
    good = make_zip(tmp_path / "good.zip", {"a": b"x" * 1000})
    (tmp_path / "cut.zip").write_bytes(good.read_bytes()[:-10])
    with pytest.raises(UnsafeZipError, match="truncated"):
        open_zip(tmp_path / "cut.zip")
    with pytest.raises(UnsafeZipError, match="larger than"):
        open_zip(good, ZipLimits(max_zip_bytes=10))
