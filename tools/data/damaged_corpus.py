"""A corpus of damaged ImageNet-S inputs: a small demo tree with one file broken per kind of damage that
users meet (truncated or empty files, unreadable or foreign masks, odd image modes, stray files, broken
symlinks, odd names). ``luss validate-data`` must name every one with its path and a fix; the tests
and ``python -m tools.data.damaged_corpus OUT`` build it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from tools.data.demo import DemoSpec, generate_demo_dataset
from tools.data.label_codec import read_label_png, write_label_png

CORPUS_SPEC = DemoSpec(classes=3, train_per_class=8, val_per_class=6, test_per_class=1, size=40)


@dataclass(frozen=True)
class Damage:
    """One damaged file: its kind, its path relative to the root and what validate-data must say."""

    kind: str
    path: str
    level: str  # "error" or "warning"


def _nth(root: Path, folder: str, i: int) -> str:
    """The root-relative path of the ``i``-th file (sorted) of ``folder``."""
    return f"{folder}/{sorted(p.name for p in (root / folder).iterdir())[i]}"


def _truncate_third(root: Path, rel: str) -> None:
    data = (root / rel).read_bytes()
    (root / rel).write_bytes(data[: len(data) // 3])


def _convert(mode: str) -> Callable[[Path, str], None]:
    def apply(root: Path, rel: str) -> None:
        Image.open(root / rel).convert(mode).save(root / rel, format="JPEG")

    return apply


def _png_named_jpeg(root: Path, rel: str) -> None:
    Image.open(root / rel).convert("RGB").save(root / rel, format="PNG")


def _sixteen_bit_png(root: Path, rel: str) -> str:
    """Replaces a train JPEG by a 16-bit greyscale PNG of the same stem; returns the new name."""
    grey = np.asarray(Image.open(root / rel).convert("L"), dtype=np.uint16) * 257
    (root / rel).unlink()
    new = rel.rsplit(".", 1)[0] + ".png"
    Image.fromarray(grey).save(root / new)  # uint16 -> mode I;16
    return new


def _exif_rotated(root: Path, rel: str) -> None:
    img = Image.open(root / rel)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    img.save(root / rel, format="JPEG", exif=exif.tobytes())


def _palette_mask(root: Path, rel: str) -> None:
    Image.fromarray(read_label_png(root / rel).astype(np.uint8)).convert("P").save(root / rel)


def _wrong_size_mask(root: Path, rel: str) -> None:
    write_label_png(root / rel, read_label_png(root / rel)[:-3, :])


def _bad_id_mask(root: Path, rel: str) -> None:
    labels = read_label_png(root / rel)
    labels[0, :4] = 7  # 3 classes: 7 is outside 0..3 and 1000
    write_label_png(root / rel, labels)


def _rename(root: Path, rel: str, new_name: str) -> str:
    new = f"{rel.rsplit('/', 1)[0]}/{new_name}"
    os.replace(root / rel, root / new)
    return new


def damage_tree(root: Path) -> list[Damage]:
    """Break files of a :data:`CORPUS_SPEC` demo tree in place; returns what was broken."""
    done: list[Damage] = []

    def record(kind: str, rel: str, level: str) -> None:
        done.append(Damage(kind, rel, level))

    def train(i: int) -> str:
        return _nth(root, "train/n90000002", i)

    def val(i: int) -> tuple[str, str]:
        image = _nth(root, "validation/n90000001", i)
        return image, f"validation-segmentation/n90000001/{Path(image).stem}.png"

    steps: list[tuple[str, str, Callable[[Path, str], None], str]] = [
        ("JPEG truncated to a third", train(0), _truncate_third, "error"),
        ("zero-byte image", train(1), lambda r, p: (r / p).write_bytes(b""), "error"),
        ("CMYK JPEG", train(2), _convert("CMYK"), "warning"),
        ("greyscale JPEG", train(3), _convert("L"), "warning"),
        ("PNG data named .JPEG", train(4), _png_named_jpeg, "warning"),
        ("EXIF-rotated JPEG", train(5), _exif_rotated, "warning"),
        (
            "unreadable mask",
            val(0)[1],
            lambda r, p: (r / p).write_bytes(b"\x89PNG\r\n\x1a\n garbage"),
            "error",
        ),
        ("zero-byte mask", val(1)[1], lambda r, p: (r / p).write_bytes(b""), "error"),
        ("palette (P) mask", val(2)[1], _palette_mask, "error"),
        ("mask of the wrong size", val(3)[1], _wrong_size_mask, "error"),
        ("mask ids outside 0..C and 1000", val(4)[1], _bad_id_mask, "error"),
    ]
    for kind, rel, apply, level in steps:
        apply(root, rel)
        record(kind, rel, level)
    record("16-bit PNG", _sixteen_bit_png(root, train(6)), "warning")
    image, mask = val(5)
    os.unlink(root / mask)
    record("missing mask", image, "error")
    rgba = _nth(root, "train/n90000003", 0)
    Image.open(root / rgba).convert("RGBA").save(root / rgba, format="PNG")
    record("RGBA PNG named .JPEG", rgba, "warning")
    record(
        "space in a name", _rename(root, _nth(root, "train/n90000003", 1), "n90000003 copy.JPEG"), "warning"
    )
    record("unicode name", _rename(root, _nth(root, "train/n90000003", 2), "n90000003_é.JPEG"), "warning")
    for name in (".DS_Store", "Thumbs.db", "notes.txt"):
        (root / "train/n90000001" / name).write_bytes(b"\0\1junk")
        record(f"stray {name}", f"train/n90000001/{name}", "warning")
    os.symlink(root / "nowhere/lost.JPEG", root / "train/n90000001/linked.JPEG")
    record("broken symlink", "train/n90000001/linked.JPEG", "error")
    (root / "train/n90000004").mkdir()
    record("empty class folder", "train/n90000004/", "error")
    return done


def build_damaged_corpus(out_dir: str | os.PathLike[str]) -> tuple[Path, list[Damage]]:
    """A fresh demo tree at ``out_dir`` with :func:`damage_tree` applied."""
    root = generate_demo_dataset(out_dir, CORPUS_SPEC, progress=False, overwrite=True)
    return root, damage_tree(root)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tools.data.damaged_corpus OUT")
    built, damages = build_damaged_corpus(sys.argv[1])
    for d in damages:
        print(f"{d.level:8s} {d.kind:32s} {d.path}")
