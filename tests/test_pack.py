"""`luss pack`: a valid pack, the exact zip layout, determinism, atomicity, and every refusal.

The fixture helpers here (tiny dataset + predictions) are also imported by test_pack_check.py.
"""

from __future__ import annotations

import json
import struct
import sys
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from luss_cli.main import cli
from tools.data.label_codec import write_label_png
from tools.errors import SubmissionError
from tools.packing.method_info import MethodInfo, parse_method_text
from tools.packing.pack import check_submission_zip, pack_submission
from tools.packing.rules import count_kinds

CLASSES = ("n01000001", "n01000002", "n01000003")
# (wnid, stem, (width, height)); stems are ImageNet val names as in the real test split.
TEST_IMAGES = (
    ("n01000001", "ILSVRC2012_val_00000001", (16, 12)),
    ("n01000001", "ILSVRC2012_val_00000002", (12, 16)),
    ("n01000002", "ILSVRC2012_val_00000003", (20, 10)),
    ("n01000003", "ILSVRC2012_val_00000004", (8, 8)),
)
MATCH = {"1": 2, "2": 3, "3": 1, "0": 0}


@dataclass(frozen=True)
class Sub:
    """A tiny dataset, a valid prediction folder for its test split, and a match.json."""

    data: Path
    pred: Path
    match: Path
    out: Path

    def png(self, i: int = 0) -> Path:
        wnid, stem, _ = TEST_IMAGES[i]
        return self.pred / wnid / f"{stem}.png"


def labels_for(size: tuple[int, int]) -> np.ndarray:
    """Ids 0..3 in stripes: every image uses every id (so match keys all matter)."""
    w, h = size
    return (np.arange(w * h).reshape(h, w) % (len(CLASSES) + 1)).astype(np.int32)


def build_submission(root: Path) -> Sub:
    data, pred = root / "data", root / "pred"
    for wnid in CLASSES:
        (data / "train" / wnid).mkdir(parents=True)
    for wnid, stem, size in TEST_IMAGES:
        (data / "test" / wnid).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, (120, 80, 40)).save(data / "test" / wnid / f"{stem}.JPEG", quality=80)
        write_label_png(pred / wnid / f"{stem}.png", labels_for(size))
    match = root / "match.json"
    match.write_text(json.dumps(MATCH))
    return Sub(data=data, pred=pred, match=match, out=root / "submissions" / "sub.zip")


def raw_png(width: int, height: int, depth: int, colour: int, pixel_bytes: int) -> bytes:
    """A minimal PNG written by hand (PIL cannot write 16-bit RGB), all-zero pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows = b"".join(b"\x00" + bytes(width * pixel_bytes) for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.fixture()
def sub(tmp_path: Path) -> Sub:
    return build_submission(tmp_path)


def kinds_of(exc_info: pytest.ExceptionInfo[SubmissionError]) -> set[str]:
    return set(count_kinds(exc_info.value.problems))


# ---------------------------------------------------------------------------------------- valid pack


def test_pack_valid_then_check_passes(sub: Sub) -> None:
    result = pack_submission(sub.pred, sub.data, sub.match, sub.out, MethodInfo())
    assert result.path == sub.out and sub.out.is_file()
    assert (result.num_images, result.num_classes) == (len(TEST_IMAGES), len(CLASSES))
    assert result.size_bytes == sub.out.stat().st_size
    assert check_submission_zip(sub.out, sub.data) == []


def test_zip_layout_is_exact(sub: Sub) -> None:
    method = MethodInfo(method_name="mine", description="one line")
    pack_submission(sub.pred, sub.data, sub.match, sub.out, method)
    with zipfile.ZipFile(sub.out) as zf:
        names = zf.namelist()
        expected = []
        for wnid in CLASSES:
            expected.append(f"{wnid}/")
            expected += sorted(f"{w}/{s}.png" for w, s, _ in TEST_IMAGES if w == wnid)
        assert names == [*expected, "match.json", "method.txt"]
        assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in zf.infolist())
        assert json.loads(zf.read("match.json")) == MATCH
        assert list(json.loads(zf.read("match.json")))[-1] == "0"  # PASS order: 1..C, then "0"
        text = zf.read("method.txt").decode()
        png = zf.read(f"{TEST_IMAGES[0][0]}/{TEST_IMAGES[0][1]}.png")
    assert png == sub.png(0).read_bytes()
    assert text == method.to_text()
    assert text.splitlines() == [
        "Method name: mine",
        "Training data: ImageNet-S50 train (no labels)",
        "Training scheme: SSL",
        "Networks: SAM ViT-B/16 + Feature Aggregator",
        f"Paper/Project link: {MethodInfo().link}",
        "Method description: one line",
    ]


def test_method_info_round_trip_and_rejects() -> None:
    info = MethodInfo(method_name="x: y", link="https://example.org/a:b")
    assert parse_method_text(info.to_text()) == (info, [])
    assert parse_method_text(info.to_text().replace("\n", "\r\n"))[0] == info
    assert parse_method_text("")[1]
    lines = info.to_text().splitlines()
    assert parse_method_text("\n".join(lines[:5]))[1]  # 5 lines
    assert parse_method_text("\n".join([*lines, "extra: line"]))[1]  # 7 lines
    assert parse_method_text("\n".join([lines[1], lines[0], *lines[2:]]))[1]  # order
    assert parse_method_text(
        info.to_text().replace("Networks: SAM ViT-B/16 + Feature Aggregator", "Networks:")
    )[1]
    assert MethodInfo(networks="a\nb").problems() and MethodInfo(link="  ").problems()
    assert MethodInfo().problems() == []


def test_pack_is_deterministic(sub: Sub, tmp_path: Path) -> None:
    first = pack_submission(sub.pred, sub.data, sub.match, tmp_path / "a.zip", MethodInfo()).path
    # Touching files and rewriting match.json with other formatting must not change a byte.
    sub.png(1).touch()
    sub.match.write_text(json.dumps(dict(reversed(list(MATCH.items()))), indent=4))
    second = pack_submission(sub.pred, sub.data, sub.match, tmp_path / "b.zip", MethodInfo()).path
    assert first.read_bytes() == second.read_bytes()


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_failure_mid_write_leaves_nothing(sub: Sub, monkeypatch: pytest.MonkeyPatch, error: type) -> None:
    real_writestr = zipfile.ZipFile.writestr
    calls = []

    def failing_writestr(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # after a folder and a PNG are already in the file
            raise error("simulated crash")
        return real_writestr(self, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", failing_writestr)
    with pytest.raises(error):
        pack_submission(sub.pred, sub.data, sub.match, sub.out, MethodInfo())
    assert list(sub.out.parent.iterdir()) == []  # neither the zip nor its temporary file


def test_existing_zip_is_kept_when_a_repack_fails(sub: Sub) -> None:
    pack_submission(sub.pred, sub.data, sub.match, sub.out, MethodInfo())
    before = sub.out.read_bytes()
    sub.png(0).unlink()
    with pytest.raises(SubmissionError):
        pack_submission(sub.pred, sub.data, sub.match, sub.out, MethodInfo())
    assert sub.out.read_bytes() == before


# ---------------------------------------------------------------------------------- refused packs


def _wrong_size(s: Sub) -> None:
    write_label_png(s.png(0), np.zeros((5, 5), np.int32))


def _mode(mode: str, channels: int) -> object:
    def mutate(s: Sub) -> None:
        w, h = TEST_IMAGES[0][2]
        shape = (h, w, channels) if channels > 1 else (h, w)
        img = Image.fromarray(np.zeros(shape, np.uint8))  # mode from the shape: L or RGBA
        assert img.mode == mode
        img.save(s.png(0))

    return mutate


def _sixteen_bit_rgb(s: Sub) -> None:
    w, h = TEST_IMAGES[0][2]
    s.png(0).write_bytes(raw_png(w, h, 16, 2, 6))


def _sixteen_bit_grey(s: Sub) -> None:
    w, h = TEST_IMAGES[0][2]
    Image.fromarray(np.zeros((h, w), np.uint16)).save(s.png(0))


def _blue(s: Sub) -> None:
    w, h = TEST_IMAGES[0][2]
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[0, 0, 2] = 7
    Image.fromarray(rgb).save(s.png(0))


def _id_too_big(s: Sub) -> None:
    labels = labels_for(TEST_IMAGES[0][2])
    labels[0, 0] = len(CLASSES) + 1
    write_label_png(s.png(0), labels)


def _match(obj: object) -> object:
    def mutate(s: Sub) -> None:
        s.match.write_text(obj if isinstance(obj, str) else json.dumps(obj))

    return mutate


def _write(rel: str, data: bytes = b"x") -> object:
    def mutate(s: Sub) -> None:
        path = s.pred / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    return mutate


BROKEN = {
    "missing image": (lambda s: s.png(2).unlink(), {"missing"}),
    "extra file in class folder": (_write("n01000001/notes.txt"), {"extra"}),
    "extra png": (_write("n01000001/ILSVRC2012_val_00000099.png"), {"extra"}),
    "extra root file": (_write("README.md"), {"extra"}),
    "unknown folder": (_write("n09999999/ILSVRC2012_val_00000001.png"), {"extra"}),
    "nested folder": (_write("n01000001/sub/ILSVRC2012_val_00000001.png"), {"extra"}),
    "empty extra folder": (lambda s: (s.pred / "n01000009").mkdir(), {"extra"}),
    "case duplicate": (_write("n01000001/ILSVRC2012_VAL_00000001.png"), {"extra", "case-duplicate"}),
    "not a png": (lambda s: s.png(0).write_bytes(b"GIF89a not a png at all, really not"), {"png-format"}),
    "wrong size": (_wrong_size, {"wrong-size"}),
    "L mode": (_mode("L", 1), {"png-format"}),
    "RGBA": (_mode("RGBA", 4), {"png-format"}),
    "palette": (lambda s: Image.new("P", TEST_IMAGES[0][2]).save(s.png(0)), {"png-format"}),
    "16-bit RGB": (_sixteen_bit_rgb, {"png-format"}),
    "16-bit grey": (_sixteen_bit_grey, {"png-format"}),
    "blue channel": (_blue, {"blue-channel"}),
    "id > C": (_id_too_big, {"id-range"}),
    "predicted id not in match": (_match({"1": 2, "2": 3, "0": 0}), {"match", "id-not-in-match"}),
    "match not one-to-one": (_match({"1": 2, "2": 2, "3": 1, "0": 0}), {"match"}),
    "match missing 0": (_match({"1": 2, "2": 3, "3": 1}), {"match", "id-not-in-match"}),
    "match 0 to class": (_match({"1": 2, "2": 3, "3": 1, "0": 1}), {"match"}),
    "match extra key": (_match({**MATCH, "4": 4}), {"match"}),
    "match target out of range": (_match({"1": 2, "2": 3, "3": 9, "0": 0}), {"match"}),
    "match string values": (_match({"1": "2", "2": "3", "3": "1", "0": "0"}), {"match"}),
    "match bad key": (_match({"01": 2, "2": 3, "3": 1, "0": 0}), {"match", "id-not-in-match"}),
    "match duplicate key": (_match('{"1": 2, "1": 3, "2": 3, "3": 1, "0": 0}'), {"match"}),
    "match bad JSON": (_match('{"1": 2, '), {"match"}),
    "match a list": (_match([2, 3, 1]), {"match"}),
    "match file missing": (lambda s: s.match.unlink(), {"match"}),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_pack_refuses_broken_submission(sub: Sub, case: str) -> None:
    mutate, kinds = BROKEN[case]
    mutate(sub)
    with pytest.raises(SubmissionError) as exc_info:
        pack_submission(sub.pred, sub.data, sub.match, sub.out, MethodInfo())
    assert kinds_of(exc_info) == kinds, exc_info.value.problems
    assert all(isinstance(p, str) and p for p in exc_info.value.problems)
    assert "nothing was written" in str(exc_info.value)
    assert not sub.out.parent.exists()  # not even the output folder


def test_problems_name_the_file(sub: Sub) -> None:
    _wrong_size(sub)
    sub.png(2).unlink()
    with pytest.raises(SubmissionError) as exc_info:
        pack_submission(sub.pred, sub.data, sub.match, sub.out, MethodInfo())
    text = "\n".join(exc_info.value.problems)
    assert "n01000001/ILSVRC2012_val_00000001.png: is 5x5 but its test image" in text
    assert "n01000002/ILSVRC2012_val_00000003.png: missing" in text
    assert "(1 missing, 1 wrong-size)" in str(exc_info.value)


def test_pack_refuses_bad_method_and_out_paths(sub: Sub) -> None:
    with pytest.raises(SubmissionError) as exc_info:
        pack_submission(sub.pred, sub.data, sub.match, sub.out, MethodInfo(method_name=""))
    assert kinds_of(exc_info) == {"method"}
    with pytest.raises(SubmissionError, match="inside the prediction folder"):
        pack_submission(sub.pred, sub.data, sub.match, sub.pred / "x.zip", MethodInfo())
    with pytest.raises(SubmissionError, match="not found"):
        pack_submission(sub.pred / "nope", sub.data, sub.match, sub.out, MethodInfo())


def test_root_match_and_method_in_pred_dir_are_ignored(sub: Sub) -> None:
    (sub.pred / "match.json").write_text("{}")  # PASS copies match.json into the test dump
    (sub.pred / "method.txt").write_text("old")
    pack_submission(sub.pred, sub.data, sub.match, sub.out, MethodInfo())
    with zipfile.ZipFile(sub.out) as zf:
        assert json.loads(zf.read("match.json")) == MATCH


def test_process_pool_path(sub: Sub, monkeypatch: pytest.MonkeyPatch) -> None:
    """workers=2 runs the PNG checks in spawned processes; problem kinds survive the trip."""
    from tools.packing import rules

    pools = []
    real_run_pool = rules._run_pool
    monkeypatch.setattr(rules, "_run_pool", lambda *a: pools.append(a[1]) or real_run_pool(*a))
    _blue(sub)
    with pytest.raises(SubmissionError) as exc_info:
        pack_submission(sub.pred, sub.data, sub.match, sub.out, MethodInfo(), workers=2)
    assert kinds_of(exc_info) == {"blue-channel"}
    assert pools == [2]


# ------------------------------------------------------------------------------------------------ CLI


def test_cli_pack_then_check(sub: Sub) -> None:
    runner = CliRunner()
    args = ["pack", str(sub.pred), "--data", str(sub.data), "--match", str(sub.match), "--out", str(sub.out)]
    result = runner.invoke(cli, [*args, "--method-name", "cli method"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "Packed" in result.output and str(sub.out) in result.output
    with zipfile.ZipFile(sub.out) as zf:
        assert zf.read("method.txt").decode().startswith("Method name: cli method\n")
    result = runner.invoke(cli, ["pack", "--check", str(sub.out), "--data", str(sub.data)])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output


def test_cli_refusal_raises_submission_error(sub: Sub) -> None:
    sub.png(0).unlink()
    args = ["pack", str(sub.pred), "--data", str(sub.data), "--match", str(sub.match), "--out", str(sub.out)]
    result = CliRunner().invoke(cli, args)
    assert isinstance(result.exception, SubmissionError)
    assert any("missing" in p for p in result.exception.problems)


def test_cli_main_exits_2_and_lists_problems(
    sub: Sub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from luss_cli.main import main

    bad = tmp_path / "bad.zip"
    bad.write_text("not a zip")
    monkeypatch.setattr(sys, "argv", ["luss", "pack", "--check", str(bad), "--data", str(sub.data)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "would be refused" in err and "not a readable zip file" in err


@pytest.mark.parametrize(
    "extra",
    [
        [],  # PRED, --match and --out missing
        ["--check", "x.zip", "PRED"],  # --check with PRED
    ],
)
def test_cli_usage_errors(sub: Sub, extra: list[str]) -> None:
    result = CliRunner().invoke(cli, ["pack", "--data", str(sub.data), *extra])
    assert result.exit_code == 2
    assert "--check" in result.output


def test_cli_help_teaches_the_layout() -> None:
    result = CliRunner().invoke(cli, ["pack", "--help"])
    assert result.exit_code == 0
    for needle in ("match.json", "method.txt", "luss predict --split validation", "no enclosing folder"):
        assert needle in result.output


def test_progress_bar_path(sub: Sub, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rich bar (only drawn on a terminal) runs through a whole pack without error."""
    from rich.console import Console

    monkeypatch.setattr(Console, "is_terminal", property(lambda self: True))
    result = pack_submission(sub.pred, sub.data, sub.match, sub.out, MethodInfo(), progress=True)
    assert result.num_images == len(TEST_IMAGES)
