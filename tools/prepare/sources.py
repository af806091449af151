"""The user's ILSVRC2012 folder: ``train/<wnid>/*.JPEG`` and ``val/`` either flat (50,000
``ILSVRC2012_val_*.JPEG``, as the archive unpacks) or sorted into ``val/<wnid>/`` (what the official
ImageNet-S scripts expect). Kaggle's ``ILSVRC/Data/CLS-LOC/`` below the given folder is found too."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tools.errors import PrepareError

_NESTED = ("", "ILSVRC/Data/CLS-LOC", "Data/CLS-LOC")


@dataclass(frozen=True)
class ImageNetSource:
    """Where each ImageNet image the split lists name lives."""

    root: Path
    val_sorted: bool

    @property
    def train_dir(self) -> Path:
        return self.root / "train"

    @property
    def val_dir(self) -> Path:
        return self.root / "val"

    def val_image(self, listed: str) -> Path:
        """``<wnid>/ILSVRC2012_val_*.JPEG`` (a mapping source) -> the file in this val folder."""
        return self.val_dir / (listed if self.val_sorted else listed.split("/")[-1])

    def train_class_dir(self, wnid: str) -> Path:
        return self.train_dir / wnid

    def train_image(self, wnid: str, name: str) -> Path:
        return self.train_dir / wnid / name


def _val_layout(val_dir: Path) -> bool:
    """True when val/ is sorted into wnid folders, False when flat; raises when it is neither."""
    has_files = has_dirs = False
    with os.scandir(val_dir) as entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                has_dirs = True
            elif entry.name.upper().endswith(".JPEG"):
                has_files = True
            if has_files and has_dirs:
                raise PrepareError(
                    f"{val_dir}: holds both ILSVRC2012_val_*.JPEG files and class folders. Fix: keep one "
                    "layout, either all 50,000 images flat in val/ or all of them in val/<wnid>/ folders."
                )
    if not (has_files or has_dirs):
        raise PrepareError(
            f"{val_dir}: empty. Fix: unpack ILSVRC2012_img_val.tar there (flat, 50,000 images) or point "
            "--imagenet at a copy whose val/ is sorted into wnid folders."
        )
    return has_dirs


def find_imagenet(path: str | os.PathLike[str]) -> ImageNetSource:
    """The ILSVRC2012 root below ``path`` holding ``train/`` and ``val/``, and its val layout."""
    path = Path(path)
    for nested in _NESTED:
        root = path / nested if nested else path
        if (root / "train").is_dir() and (root / "val").is_dir():
            return ImageNetSource(root=root.resolve(), val_sorted=_val_layout(root / "val"))
    raise PrepareError(
        f"{path}: no ILSVRC2012 train/ and val/ folders here (nor under ILSVRC/Data/CLS-LOC/). Fix: pass "
        "--imagenet the folder that holds train/<wnid>/*.JPEG and val/ (flat or sorted into wnid folders)."
    )
