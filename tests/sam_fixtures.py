"""A tiny random SAM with the real ``segment_anything`` classes and a 2-image validation tree with
raw predictions: what the refine tests (one process and under mpirun) run SAM voting on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from tools.data.imagenet_s import ImageNetS
from tools.data.label_codec import write_label_png
from tools.refine.tiny_sam import TINY_GENERATOR, tiny_sam  # noqa: F401 - the refine tests take them here
from tools.run_layout import RunLayout

SIZES = {"n0001/a": (36, 48), "n0002/b": (40, 30)}


def make_tree(tmp_path: Path) -> tuple[ImageNetS, RunLayout]:
    """Images, GT and raw predictions of a 2-class, 2-image ImageNet-S-like validation split."""
    data_root, layout = tmp_path / "data", RunLayout.at(tmp_path / "run")
    rng = np.random.default_rng(3)
    for n, (key, (h, w)) in enumerate(SIZES.items(), start=1):
        wnid = key.split("/")[0]
        (data_root / "train" / wnid).mkdir(parents=True, exist_ok=True)
        image = data_root / "validation" / f"{key}.JPEG"
        image.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(image)
        gt = np.zeros((h, w), np.int32)
        gt[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = n
        write_label_png(data_root / "validation-segmentation" / f"{key}.png", gt)
        pred = np.where(rng.random((h, w)) < 0.8, (gt > 0) * (3 - n), 0)  # noisy, permuted ids
        write_label_png(layout.predict_dir("validation") / f"{key}.png", pred)
    return ImageNetS(data_root), layout
