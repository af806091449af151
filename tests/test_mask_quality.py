"""Stage-2 mask quality against train ground truth (measurement only)."""

import numpy as np
import pytest

from tools.clustering.embed import foreground_weights, mask_pooled
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


def test_foreground_weights_follow_the_embedding_crop():
    # 64 x 96 image, shorter side kept at 64, centre crop 64: 16 columns cut on each side.
    mask = np.zeros((64, 96), bool)
    mask[:, 16:48] = True  # the left half of what the crop keeps
    weights = foreground_weights(mask, 64, 64, (2, 2))
    np.testing.assert_allclose(weights, [[1.0, 0.0], [1.0, 0.0]], atol=1e-6)
    # An upscaled image: the shorter side 32 -> 64; the mask covers the top quarter of the rows.
    small = np.zeros((32, 32), bool)
    small[:8] = True
    np.testing.assert_allclose(foreground_weights(small, 64, 64, (4, 1))[:, 0], [1, 0, 0, 0], atol=0.02)


def test_mask_pooling_averages_the_object_cells_only():
    u = np.zeros((2, 2, 2), np.float32)
    u[0, 0, 0] = u[0, 1, 0] = 1.0  # left column: (1, 0)
    u[1, :, 1] = 1.0  # right column: (0, 1)
    weights = np.array([[1.0, 0.0], [0.5, 0.0]], np.float32)
    np.testing.assert_allclose(mask_pooled(u, weights), [1.0, 0.0])
    assert np.isnan(mask_pooled(u, np.zeros((2, 2), np.float32))).all()
