"""`check_submission_zip` / `luss pack --check` on zips a user might upload, broken in every way."""

from __future__ import annotations

import io
import stat
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from test_pack import TEST_IMAGES, Sub, build_submission

from luss_cli.main import cli
from tools.errors import SubmissionError
from tools.packing.method_info import MethodInfo
from tools.packing.pack import check_submission_zip, pack_submission
from tools.packing.rules import count_kinds
from tools.packing.safe_zip import ZipLimits

Entries = list[tuple[str, bytes]]
FIRST_PNG = f"{TEST_IMAGES[0][0]}/{TEST_IMAGES[0][1]}.png"


@pytest.fixture()
def sub(tmp_path: Path) -> Sub:
    return build_submission(tmp_path)


@pytest.fixture()
def entries(sub: Sub) -> Entries:
    """The (name, bytes) entries of a valid packed zip."""
    pack_submission(sub.pred, sub.data, sub.match, sub.out, MethodInfo())
    with zipfile.ZipFile(sub.out) as zf:
        return [(i.filename, zf.read(i)) for i in zf.infolist()]


def write_zip(path: Path, entries: Entries, tweak: Callable[[zipfile.ZipInfo], None] | None = None) -> Path:
    """Write entries as given (duplicates allowed); ``tweak`` may edit each header before writing."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns on duplicate names, which we want to write
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in entries:
                info = zipfile.ZipInfo(name)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = (0o40755 << 16) | 0x10 if name.endswith("/") else 0o100644 << 16
                if tweak:
                    tweak(info)
                zf.writestr(info, data)
    return path


def kinds(zip_path: Path, sub: Sub, **kwargs) -> set[str]:
    return set(count_kinds(check_submission_zip(zip_path, sub.data, **kwargs)))


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_valid_zip_passes(sub: Sub, entries: Entries, tmp_path: Path) -> None:
    assert check_submission_zip(sub.out, sub.data) == []
    # A zip made by another tool (no folder entries, other order) is fine too.
    files = [(n, d) for n, d in reversed(entries) if not n.endswith("/")]
    assert check_submission_zip(write_zip(tmp_path / "other.zip", files), sub.data) == []


def _replace(name: str, data: bytes) -> Callable[[Entries], Entries]:
    return lambda es: [(n, data if n == name else d) for n, d in es]


def _drop(name: str) -> Callable[[Entries], Entries]:
    return lambda es: [(n, d) for n, d in es if n != name]


def _add(name: str, data: bytes = b"x") -> Callable[[Entries], Entries]:
    return lambda es: [*es, (name, data)]


w0, h0 = TEST_IMAGES[0][2]
BROKEN: dict[str, tuple[Callable[[Entries], Entries], set[str]]] = {
    "enclosing folder": (lambda es: [(f"submission/{n}", d) for n, d in es], {"enclosing-folder"}),
    "enclosing folder, macOS": (
        lambda es: [*((f"sub/{n}", d) for n, d in es), ("__MACOSX/sub/._match.json", b"x")],
        {"enclosing-folder", "extra"},
    ),
    "missing png": (_drop(FIRST_PNG), {"missing"}),
    "missing match.json": (_drop("match.json"), {"match"}),
    "missing method.txt": (_drop("method.txt"), {"method"}),
    "method.txt 5 lines": (
        _replace("method.txt", b"\n".join(MethodInfo().to_text().encode().splitlines()[:5])),
        {"method"},
    ),
    "method.txt empty value": (
        _replace("method.txt", MethodInfo().to_text().replace("SSL", "").encode()),
        {"method"},
    ),
    "match not one-to-one": (_replace("match.json", b'{"1": 1, "2": 1, "3": 3, "0": 0}'), {"match"}),
    "match bad JSON": (_replace("match.json", b"{oops"), {"match"}),
    "extra root file": (_add("README.txt"), {"extra"}),
    "macOS junk": (_add("__MACOSX/n01000001/._ILSVRC2012_val_00000001.png"), {"extra"}),
    "nested": (_add("n01000001/deeper/ILSVRC2012_val_00000001.png"), {"extra"}),
    "L mode png": (_replace(FIRST_PNG, png_bytes(Image.new("L", (w0, h0)))), {"png-format"}),
    "wrong size png": (_replace(FIRST_PNG, png_bytes(Image.new("RGB", (3, 3)))), {"wrong-size"}),
    "blue channel": (_replace(FIRST_PNG, png_bytes(Image.new("RGB", (w0, h0), (0, 0, 1)))), {"blue-channel"}),
    "id > C": (_replace(FIRST_PNG, png_bytes(Image.new("RGB", (w0, h0), (9, 0, 0)))), {"id-range"}),
    "path traversal": (_add("../evil.png"), {"zip"}),
    "absolute path": (_add("/tmp/evil.png"), {"zip"}),
    "drive letter": (_add("C:/evil.png"), {"zip"}),
    "backslash": (_add("n01000001\\ILSVRC2012_val_00000001.png"), {"zip"}),
    "duplicate entry": (lambda es: [*es, (FIRST_PNG, dict(es)[FIRST_PNG])], {"zip"}),
    # 8 MiB of zeros deflates ~1000:1; it replaces a real PNG, so it must be refused unread.
    "zip bomb": (_replace(FIRST_PNG, bytes(8 * 1024 * 1024)), {"zip"}),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_check_refuses(sub: Sub, entries: Entries, tmp_path: Path, case: str) -> None:
    mutate, expected = BROKEN[case]
    bad = write_zip(tmp_path / "bad.zip", mutate(entries))
    problems = check_submission_zip(bad, sub.data)
    assert set(count_kinds(problems)) == expected, problems


def test_enclosing_folder_says_how_to_fix(sub: Sub, entries: Entries, tmp_path: Path) -> None:
    bad = write_zip(tmp_path / "bad.zip", [(f"submission/{n}", d) for n, d in entries])
    (problem,) = check_submission_zip(bad, sub.data)
    assert problem.startswith("submission/:") and "zip root" in problem and "luss pack" in problem


def test_symlink_entry(sub: Sub, entries: Entries, tmp_path: Path) -> None:
    def as_symlink(info: zipfile.ZipInfo) -> None:
        if info.filename == FIRST_PNG:
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16

    bad = write_zip(tmp_path / "bad.zip", _replace(FIRST_PNG, b"/etc/passwd")(entries), as_symlink)
    problems = check_submission_zip(bad, sub.data)
    assert set(count_kinds(problems)) == {"zip"} and "symbolic link" in problems[0]


def set_encrypted_flag(path: Path, name: str) -> None:
    """Set bit 0 ("encrypted") of ``name``'s flags in its local and central headers (zipfile clears it)."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        local = zf.getinfo(name).header_offset
    data[local + 6] |= 0x1
    central = data.find(b"PK\x01\x02")
    while central != -1:
        name_len = int.from_bytes(data[central + 28 : central + 30], "little")
        if data[central + 46 : central + 46 + name_len] == name.encode():
            data[central + 8] |= 0x1
        central = data.find(b"PK\x01\x02", central + 4)
    path.write_bytes(bytes(data))


def test_encrypted_entry(sub: Sub, entries: Entries, tmp_path: Path) -> None:
    bad = write_zip(tmp_path / "bad.zip", entries)
    set_encrypted_flag(bad, "method.txt")
    problems = check_submission_zip(bad, sub.data)
    assert set(count_kinds(problems)) == {"zip"} and "encrypted" in problems[0]


def test_bzip2_entry(sub: Sub, entries: Entries, tmp_path: Path) -> None:
    def bzip2(info: zipfile.ZipInfo) -> None:
        info.compress_type = zipfile.ZIP_BZIP2

    problems = check_submission_zip(write_zip(tmp_path / "bad.zip", entries, bzip2), sub.data)
    assert set(count_kinds(problems)) == {"zip"}


def test_fatal_limits_read_nothing(sub: Sub) -> None:
    pack_submission(sub.pred, sub.data, sub.match, sub.out, MethodInfo())
    (problem,) = check_submission_zip(sub.out, sub.data, limits=ZipLimits(max_entries=3))
    assert "entries" in problem
    (problem,) = check_submission_zip(sub.out, sub.data, limits=ZipLimits(max_total_bytes=100))
    assert "in total" in problem
    (problem,) = check_submission_zip(sub.out, sub.data, limits=ZipLimits(max_zip_bytes=100))
    assert "larger than" in problem


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"this is not a zip", "not a readable zip file"),
        (None, "no such file"),
    ],
)
def test_not_a_zip(sub: Sub, tmp_path: Path, content: bytes | None, needle: str) -> None:
    path = tmp_path / "upload.zip"
    if content is not None:
        path.write_bytes(content)
    (problem,) = check_submission_zip(path, sub.data)
    assert needle in problem and problem.kind == "zip"


def test_truncated_zip(sub: Sub, tmp_path: Path) -> None:
    pack_submission(sub.pred, sub.data, sub.match, sub.out, MethodInfo())
    data = sub.out.read_bytes()
    cut = tmp_path / "cut.zip"
    cut.write_bytes(data[: len(data) // 2])
    (problem,) = check_submission_zip(cut, sub.data)
    assert "not a readable zip file" in problem and "truncated" in problem


def test_corrupt_entry_data(sub: Sub, tmp_path: Path) -> None:
    """A flipped byte inside an entry is caught by the CRC, reported, not raised."""
    pack_submission(sub.pred, sub.data, sub.match, sub.out, MethodInfo())
    with zipfile.ZipFile(sub.out) as zf:
        info = zf.getinfo("method.txt")
    data = bytearray(sub.out.read_bytes())
    # Local header (30 bytes + name) then the compressed data of method.txt.
    start = info.header_offset + 30 + len(info.filename)
    data[start + 2] ^= 0xFF
    bad = tmp_path / "corrupt.zip"
    bad.write_bytes(bytes(data))
    problems = check_submission_zip(bad, sub.data)
    assert problems and set(count_kinds(problems)) <= {"zip", "method"}
    assert any("method.txt" in p for p in problems)


def test_shallow_check_skips_pixels(sub: Sub, entries: Entries, tmp_path: Path) -> None:
    blue = png_bytes(Image.new("RGB", (w0, h0), (0, 0, 1)))
    bad = write_zip(tmp_path / "bad.zip", _replace(FIRST_PNG, blue)(entries))
    assert kinds(bad, sub, deep=False) == set()
    assert kinds(bad, sub, deep=True) == {"blue-channel"}


def test_check_in_process_pool(sub: Sub, entries: Entries, tmp_path: Path) -> None:
    ids = np.zeros((h0, w0, 3), np.uint8)
    ids[0, 0, 0] = 99
    bad = write_zip(tmp_path / "bad.zip", _replace(FIRST_PNG, png_bytes(Image.fromarray(ids)))(entries))
    assert kinds(bad, sub, workers=2) == {"id-range"}


def test_cli_check_refuses(sub: Sub, entries: Entries, tmp_path: Path) -> None:
    bad = write_zip(tmp_path / "bad.zip", _add("../evil.png")(entries))
    result = CliRunner().invoke(cli, ["pack", "--check", str(bad), "--data", str(sub.data)])
    assert isinstance(result.exception, SubmissionError)
    assert "1 zip" in str(result.exception) and "'../evil.png'" in result.exception.problems[0]
