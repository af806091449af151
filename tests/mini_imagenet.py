"""A generated mini-ILSVRC2012 built from the real ImageNet-S lists restricted to a few classes, and a
fake annotation zip in the official layout, for the ``luss prepare`` tests."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from tools.data.label_codec import IGNORE_ID, label_png_bytes
from tools.data.split_lists import SplitLists, load_split_lists, semi_source_wnid

IMAGE_SIZE = (10, 8)  # width, height of every image and mask
TRAIN_PER_FOLDER = 3


def mini_lists(benchmark: int, wnids: list[str]) -> SplitLists:
    return load_split_lists(benchmark).restricted_to(wnids)


def _jpeg(name: str) -> bytes:
    """A tiny JPEG whose colour is a function of its name, so every copy can be traced to its source."""
    digest = hashlib.sha256(name.encode()).digest()
    pixels = np.empty((IMAGE_SIZE[1], IMAGE_SIZE[0], 3), np.uint8)
    pixels[:] = np.frombuffer(digest[:3], np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def make_mini_imagenet(root: Path, lists: SplitLists, val_sorted: bool) -> Path:
    """``root/train/<wnid>/`` for every source folder of the classes (plus each train-semi image) and
    ``root/val/`` (flat or in wnid folders) holding every listed val image and two unlisted ones."""
    for wnid in lists.categories:
        for folder in lists.train_sources(wnid):
            for i in range(TRAIN_PER_FOLDER):
                _write(root / "train" / folder / f"{folder}_{i}.JPEG", _jpeg(f"{folder}_{i}.JPEG"))
    for image, _ in lists.train_semi:
        name = image.split("/")[-1]
        _write(root / "train" / semi_source_wnid(image) / name, _jpeg(name))
    unlisted = ["n01440764/ILSVRC2012_val_00000293.JPEG", "n15075141/ILSVRC2012_val_00049999.JPEG"]
    for src in [s for s, _ in lists.validation + lists.test] + unlisted:
        rel = src if val_sorted else src.split("/")[-1]
        _write(root / "val" / rel, _jpeg(src.split("/")[-1]))
    return root


def mask_bytes(lists: SplitLists, mask: str) -> bytes:
    labels = np.zeros((IMAGE_SIZE[1], IMAGE_SIZE[0]), np.int32)
    labels[2:6, 3:7] = lists.categories.index(mask.split("/")[0]) + 1
    labels[0, :] = IGNORE_ID
    return label_png_bytes(labels)


def make_annotation_zip(path: Path, lists: SplitLists, top_folder: str | None = "", drop: int = 0) -> Path:
    """The annotation zip: ``<top>/validation-segmentation/<mask>`` and ``<top>/train-semi-segmentation/
    <mask>``; ``top_folder`` "" means ``lists.name``, None no top folder; ``drop`` leaves out the last
    N masks."""
    top = lists.name if top_folder == "" else top_folder
    prefix = f"{top}/" if top else ""
    entries = [f"validation-segmentation/{m}" for _, m in lists.validation_masks] + [
        f"train-semi-segmentation/{m}" for _, m in lists.train_semi
    ]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for entry in entries[: len(entries) - drop]:
            zf.writestr(prefix + entry, mask_bytes(lists, entry.split("/", 1)[1]))
    return path


def expected_tree(lists: SplitLists, imagenet: Path) -> dict[str, bytes]:
    """Every file of the prepared tree (relative path -> bytes): train/ holds each ImageNet train folder
    of a class (two for a merged S919 class); everything else is what the lists name."""
    tree: dict[str, bytes] = {}
    for wnid in lists.categories:
        for folder in lists.train_sources(wnid):
            for image in sorted((imagenet / "train" / folder).iterdir()):
                tree[f"train/{wnid}/{image.name}"] = _jpeg(image.name)
    for split, pairs in (("validation", lists.validation), ("test", lists.test)):
        for _, dst in pairs:
            tree[f"{split}/{dst}"] = _jpeg(dst.split("/")[-1])
    for image, mask in lists.train_semi:
        tree[f"train-semi/{image}"] = _jpeg(image.split("/")[-1])
        tree[f"train-semi-segmentation/{mask}"] = mask_bytes(lists, mask)
    for _, mask in lists.validation_masks:
        tree[f"validation-segmentation/{mask}"] = mask_bytes(lists, mask)
    return tree


def read_tree(root: Path, skip: tuple[str, ...] = ("train-full",)) -> dict[str, bytes]:
    """Every file under ``root`` (following symlinked folders, except ``skip``), hidden ones included
    except the prepare state file."""
    tree: dict[str, bytes] = {}
    for folder, dirs, files in os.walk(root, followlinks=True):
        dirs[:] = [d for d in dirs if not (Path(folder) == root and d in skip)]
        for name in files:
            path = Path(folder) / name
            rel = path.relative_to(root).as_posix()
            if rel != ".luss-prepare.json":
                tree[rel] = path.read_bytes()
    return dict(sorted(tree.items()))
