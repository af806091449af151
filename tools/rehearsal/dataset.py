"""A small ImageNet-S tree whose images have ImageNet's odd sizes (500x375, 333x500, ...).

The demo generator draws the scenes; every image and mask is then resized to the next size of
:data:`ODD_SIZES` in turn (masks with nearest neighbour, so their ids survive), so the stages meet
the shapes a real ImageNet-S copy holds: sides that are not multiples of 16 or 32, portrait and
landscape, and a few small images.
"""

from __future__ import annotations

from itertools import cycle
from pathlib import Path

import numpy as np
from PIL import Image

from tools.data.demo import JPEG_QUALITY, DemoSpec, generate_demo_dataset
from tools.data.label_codec import read_label_png, write_label_png

# (width, height): ImageNet's commonest shapes and small images, in the order they are handed out.
ODD_SIZES = ((500, 375), (333, 500), (375, 500), (500, 333), (120, 90), (77, 101))
SPLIT_PAIRS = (
    ("train", "train-segmentation"),
    ("validation", "validation-segmentation"),
    ("test", "test-segmentation"),
)


def odd_sized_dataset(out: Path, classes: int = 3, per_class: int = 6, seed: int = 0) -> Path:
    """``classes`` classes with ``per_class`` train, 2 validation and 2 test images each, at odd sizes."""
    marker = out / ".odd-sizes"
    if marker.is_file():
        return out
    spec = DemoSpec(classes=classes, train_per_class=per_class, val_per_class=2, test_per_class=2, seed=seed)
    generate_demo_dataset(out, spec, overwrite=True, progress=False)
    sizes = cycle(ODD_SIZES)
    for images_dir, masks_dir in SPLIT_PAIRS:
        for image_path in sorted((out / images_dir).glob("*/*.JPEG")):
            size = next(sizes)
            with Image.open(image_path) as img:
                resized = img.convert("RGB").resize(size, Image.BICUBIC)
            resized.save(image_path, quality=JPEG_QUALITY)
            mask_path = out / masks_dir / image_path.parent.name / f"{image_path.stem}.png"
            if mask_path.is_file():
                labels = read_label_png(mask_path)
                nearest = Image.fromarray(labels.astype(np.int32)).resize(size, Image.NEAREST)
                write_label_png(mask_path, np.asarray(nearest))
    marker.write_text("resized to ImageNet-like sizes\n")
    return out
