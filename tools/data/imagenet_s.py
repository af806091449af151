"""Reading an ImageNet-S tree.

```
ROOT/train/<wnid>/<name>.JPEG
ROOT/validation/<wnid>/<name>.JPEG      ROOT/validation-segmentation/<wnid>/<name>.png
ROOT/test/<wnid>/<name>.JPEG            ROOT/test-segmentation/<wnid>/<name>.png   (demo data only)
```
The class index of a wnid is its 1-based rank in sorted order over the *train* class folders
(the ImageNet-S category files are sorted, so this equals their line number). Test folder names are
read only to place output files; they are never used as labels.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from tools.errors import DatasetError

SPLITS = ("train", "validation", "test")
SEGMENTATION_DIRS = {
    "validation": "validation-segmentation",
    "test": "test-segmentation",
    "train-semi": "train-semi-segmentation",
}
# Ground truth of train images, which only the built-in demo has. Read to *measure* Stage 2 (saliency
# and pseudo-label quality in the run report), never by training.
TRAIN_GROUND_TRUTH_DIR = "train-segmentation"
IMAGE_EXTENSIONS = frozenset({".jpeg", ".jpg", ".png", ".bmp", ".tif", ".tiff"})


@dataclass(frozen=True)
class Sample:
    """One image of a split. ``key`` is ``<wnid>/<stem>``, the name of every per-image output."""

    split: str
    wnid: str
    stem: str
    image_path: Path

    @property
    def key(self) -> str:
        return f"{self.wnid}/{self.stem}"

    def png_name(self) -> str:
        return f"{self.wnid}/{self.stem}.png"


def list_class_dirs(split_dir: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(split_dir) if e.is_dir() and not e.name.startswith("."))


def list_images(class_dir: Path) -> list[Path]:
    return sorted(
        Path(e.path)
        for e in os.scandir(class_dir)
        if e.is_file() and not e.name.startswith(".") and Path(e.name).suffix.lower() in IMAGE_EXTENSIONS
    )


class ImageNetS:
    """An ImageNet-S(-like) dataset root. Listing is lazy and cached per split."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(
                f"{self.root}: dataset folder not found. Point --data at an ImageNet-S root holding "
                "train/, validation/ and validation-segmentation/ (or create a demo one with "
                "`luss demo-data data/demo`)."
            )
        self._samples: dict[str, list[Sample]] = {}

    def split_dir(self, split: str) -> Path:
        return self.root / split

    def has_split(self, split: str) -> bool:
        return self.split_dir(split).is_dir()

    def segmentation_dir(self, split: str) -> Path:
        if split not in SEGMENTATION_DIRS:
            raise ValueError(f"split {split!r} has no segmentation folder")
        return self.root / SEGMENTATION_DIRS[split]

    @cached_property
    def classes(self) -> list[str]:
        """Sorted wnids; class id of ``classes[i]`` is ``i + 1``."""
        # train/ is authoritative; a scoring-only tree may hold just the ground-truth folders.
        candidates = [
            self.split_dir("train"),
            self.split_dir("validation"),
            self.segmentation_dir("validation"),
        ]
        for folder in candidates:
            if folder.is_dir():
                wnids = list_class_dirs(folder)
                if wnids:
                    return wnids
        raise DatasetError(
            f"{self.root}: no class folders under train/ or validation/. Expected "
            "train/<wnid>/<name>.JPEG (ImageNet-S layout)."
        )

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @cached_property
    def class_ids(self) -> dict[str, int]:
        return {wnid: i + 1 for i, wnid in enumerate(self.classes)}

    def class_id(self, wnid: str) -> int:
        try:
            return self.class_ids[wnid]
        except KeyError:
            raise DatasetError(f"{self.root}: class folder {wnid!r} is not a train class") from None

    def samples(self, split: str) -> list[Sample]:
        """All images of a split, sorted by ``<wnid>/<stem>``."""
        if split not in self._samples:
            split_dir = self.split_dir(split)
            if not split_dir.is_dir():
                raise DatasetError(f"{split_dir}: split folder {split!r} is missing.")
            samples = [
                Sample(split, wnid, path.stem, path)
                for wnid in list_class_dirs(split_dir)
                for path in list_images(split_dir / wnid)
            ]
            self._samples[split] = samples
        return self._samples[split]

    def mask_path(self, sample: Sample) -> Path:
        """The ground-truth PNG of a validation/test sample."""
        return self.segmentation_dir(sample.split) / sample.png_name()
