"""The ladder's floor: an all-background prediction, written as PNGs and scored by the real scorer."""

from __future__ import annotations

import numpy as np
import pytest

from tools.data.imagenet_s import ImageNetS
from tools.data.label_codec import read_label_png, write_label_png
from tools.evaluation.all_background import score_all_background, write_all_background

WNIDS = ["n01", "n02", "n03", "n04"]


def _tree(root):
    """Four 10x8 validation masks, class i on 20 pixels of image i; image 0 has 10 ignore pixels."""
    for i, wnid in enumerate(WNIDS, start=1):
        (root / "train" / wnid).mkdir(parents=True)
        gt = np.zeros((10, 8), np.int64)
        gt[:4, :5] = i
        if i == 1:
            gt[:, 7] = 1000
        write_label_png(root / "validation-segmentation" / wnid / f"img{i}.png", gt)
    return root


def test_writes_one_zero_png_per_mask_at_its_size(tmp_path):
    data = ImageNetS(_tree(tmp_path / "data"))
    assert write_all_background(data, "validation", tmp_path / "pred") == 4
    pred = read_label_png(tmp_path / "pred" / "n03" / "img3.png")
    assert pred.shape == (10, 8) and not pred.any()


def test_score_is_background_iou_over_c_plus_one_classes(tmp_path):
    result = score_all_background(_tree(tmp_path / "data"))
    # Background: 4 * 60 - 10 GT pixels; all 4 * 80 - 10 valid pixels predicted; every class IoU 0.
    assert result.per_class_iou[0] == pytest.approx(100 * 230 / 310)
    assert result.per_class_iou[1:] == [0.0] * 4
    assert result.miou == pytest.approx(100 * 230 / 310 / 5)
    assert result.acc == 0.0
