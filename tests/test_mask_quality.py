"""Stage-2 mask quality against train ground truth (measurement only)."""

import numpy as np
import pytest

from tools.clustering.quality import foreground_quality
from tools.data.label_codec import IGNORE_ID


def test_iou_coverage_and_ignore_band():
    gt = np.zeros((4, 4), np.int32)
    gt[:2] = 3  # top half is class 3
    gt[3, 3] = IGNORE_ID
    pred = np.zeros((4, 4), bool)
    pred[:, :2] = True  # left half
    pred[3, 3] = True  # on the ignore pixel: not counted
    q = foreground_quality([(pred, gt), (gt == 3, gt)])
    assert q["coverage"] == pytest.approx((9 / 16 + 8 / 16) / 2)
    assert q["fg_iou"] == pytest.approx((4 / 12 + 1.0) / 2)
    assert q["gt_coverage"] == pytest.approx(8 / 15)
    assert q["measured"] == 2


def test_without_ground_truth_only_coverage():
    pred = np.ones((2, 2), bool)
    assert foreground_quality([(pred, None)]) == {"coverage": 1.0}
    with pytest.raises(ValueError, match="shape"):
        foreground_quality([(pred, np.zeros((3, 3), np.int32))])
