"""Every official metric on tiny hand-computed arrays (ImageNet-S evaluation/metric.py, PASS metric.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tools.evaluation.boundary import boundary_mask, boundary_width
from tools.evaluation.metrics import (
    bucket_mean_iou,
    fmeasure,
    image_correct,
    iou_per_class,
    mean_iou,
    size_bucket,
    size_percent,
)
from tools.evaluation.per_image import image_stats

IGN = 1000


def test_iou_over_all_classes_with_background_and_absent_class():
    gt = np.array([[0, 0, 1], [1, 2, 2]])
    pred = np.array([[0, 1, 1], [1, 2, 0]])
    a = image_stats(pred, gt, num_classes=3).areas
    np.testing.assert_array_equal(a.tp, [1, 2, 1, 0])
    np.testing.assert_array_equal(a.pred, [2, 3, 1, 0])
    np.testing.assert_array_equal(a.gt, [2, 2, 2, 0])
    np.testing.assert_allclose(iou_per_class(a.tp, a.pred, a.gt), [1 / 3, 2 / 3, 1 / 2, 0])
    # class 3 appears nowhere and still counts as a 0 in the mean over C + 1 = 4 entries
    assert mean_iou(a.tp, a.pred, a.gt) == pytest.approx((1 / 3 + 2 / 3 + 1 / 2 + 0) / 4)


def test_ignore_pixels_are_removed_before_counting():
    gt = np.array([[1, IGN], [0, IGN]])
    pred = np.array([[1, 1], [0, 2]])
    a = image_stats(pred, gt, num_classes=2).areas
    np.testing.assert_array_equal(a.pred, [1, 1, 0])  # the 1 and the 2 under ignore are gone
    np.testing.assert_array_equal(a.gt, [1, 1, 0])
    np.testing.assert_array_equal(a.tp, [1, 1, 0])


def test_ids_above_c_are_no_prediction_but_keep_gt_area_and_count_as_foreground():
    gt = np.array([[1, 1], [0, 0]])
    pred = np.array([[7, 1], [7, 0]])
    stats = image_stats(pred, gt, num_classes=2)
    np.testing.assert_array_equal(stats.areas.pred, [1, 1, 0])  # the two 7s are in no bin
    np.testing.assert_array_equal(stats.areas.gt, [2, 2, 0])
    np.testing.assert_array_equal(stats.areas.tp, [1, 1, 0])
    # F-measure uses predict > 0: 3 foreground predictions, 2 of them on GT foreground
    precision, recall = 2 / 3, 1.0
    assert stats.fmeasure == pytest.approx(1.3 * precision * recall / (0.3 * precision + recall))


def test_fmeasure_uses_beta_linearly():
    # P = 1, R = 0.5: (1 + 0.3) * 0.5 / (0.3 + 0.5) = 0.8125 (beta^2 would give 0.924)
    assert float(fmeasure(4, 2, 2)) == pytest.approx(0.8125)
    assert float(fmeasure(0, 0, 0)) == 0.0
    assert float(fmeasure(5, 0, 0)) == 0.0


def test_image_accuracy_largest_predicted_foreground_class():
    area_gt = np.array([10, 0, 5, 0])
    assert image_correct(np.array([1, 3, 6, 0]), area_gt)  # class 2 is largest and in the GT
    assert not image_correct(np.array([1, 6, 3, 0]), area_gt)  # class 1 is largest, not in the GT
    assert not image_correct(np.array([9, 0, 0, 0]), area_gt)  # no foreground predicted
    # ties go to the lowest class id, as argmax does
    assert not image_correct(np.array([0, 4, 4, 0]), area_gt)
    assert image_correct(np.array([0, 0, 4, 4]), np.array([1, 0, 2, 0]))


def test_size_percent_and_buckets():
    np.testing.assert_array_equal(size_percent(np.array([5, 25, 50, 51, 1]), 100), [5, 25, 50, 51, 1])
    np.testing.assert_array_equal(
        size_bucket(np.array([1, 5, 6, 25, 26, 50, 51, 100])), [0, 0, 1, 1, 2, 2, 3, 3]
    )
    assert size_percent(np.array([1]), 3)[0] == 34  # ceil(33.3)


def test_size_percent_is_float32_like_the_official_torch_code():
    # 100 * 671091 is not a float32; rounded up, the quotient lands just above 50 -> ceil gives 51 (L),
    # where exact arithmetic gives 50 (ML). The official evaluator computes it in float32.
    assert math.ceil(100 * 671091 / 1342182) == 50
    assert size_percent(np.array([671091]), 1342182)[0] == 51


def test_size_buckets_count_background_and_average_only_present_classes():
    gt = np.zeros((10, 10), int)
    gt.flat[:5] = 1  # 5 % -> S
    gt.flat[50:80] = 2  # 30 % -> ML
    pred = np.where(gt == 1, 0, gt)  # class 1 missed entirely
    a = image_stats(pred, gt, num_classes=3).areas
    np.testing.assert_array_equal(a.bucket_gt[0], [65, 5, 0, 0])
    np.testing.assert_array_equal(a.bucket_pred[0], [70, 0, 0, 0])
    np.testing.assert_array_equal(a.bucket_tp[0], [65, 0, 0, 0])
    assert not a.bucket_gt[1].any() and not a.bucket_pred[1].any()  # MS: no class, nothing added
    np.testing.assert_array_equal(a.bucket_gt[2], [65, 0, 30, 0])
    np.testing.assert_array_equal(a.bucket_pred[2], [65, 0, 30, 0])
    # [Ps > 0]: S averages background and class 1 only, not the absent classes 2 and 3
    assert bucket_mean_iou(a.bucket_tp[0], a.bucket_pred[0], a.bucket_gt[0]) == pytest.approx(
        (65 / 70 + 0) / 2
    )
    assert bucket_mean_iou(a.bucket_tp[1], a.bucket_pred[1], a.bucket_gt[1]) is None
    assert bucket_mean_iou(a.bucket_tp[2], a.bucket_pred[2], a.bucket_gt[2]) == pytest.approx(1.0)


def test_bucket_size_uses_non_ignored_pixels():
    gt = np.full((10, 10), IGN)
    gt.flat[:20] = 0
    gt.flat[20:30] = 1  # 10 of 30 valid pixels = 34 % -> ML, although only 10 % of the image
    a = image_stats(gt.copy(), gt, num_classes=1).areas
    assert a.bucket_gt[2, 1] == 10 and a.bucket_gt[1, 1] == 0


def test_boundary_width_follows_the_diagonal_rule():
    assert boundary_width(10, 10) == 1  # round(0.42) = 0, floored at 1
    assert boundary_width(100, 100) == 4  # round(4.24)
    assert boundary_width(375, 500) == 19  # round(18.75)
    for h, w in [(30, 40), (150, 200), (333, 500)]:
        assert boundary_width(h, w) == max(1, int(round(0.03 * np.sqrt(h**2 + w**2))))


def test_boundary_of_a_tiny_square():
    labels = np.zeros((10, 10), int)
    labels[3:7, 3:7] = 1  # 4x4 square, d = 1
    edge = boundary_mask(labels)
    square = labels == 1
    assert (edge & square).sum() == 12  # the square's outer ring; its 2x2 core is interior
    assert not edge[4:6, 4:6].any()
    # background: the image border (36 px) and the ring around the square (36 - 16 = 20 px)
    assert (edge & ~square).sum() == 56
    assert not edge[1, 1] and edge[0, 5] and edge[2, 2]


def test_boundary_iou_of_a_perfect_prediction_is_one():
    gt = np.zeros((12, 12), int)
    gt[2:8, 3:9] = 1
    gt[:, 10:] = IGN
    stats = image_stats(gt.copy(), gt, 2, boundary_mask(gt), boundary_mask(gt))
    e = stats.edges
    np.testing.assert_allclose(iou_per_class(e.tp, e.pred, e.gt)[:2], [1.0, 1.0])
    # the ignore band itself is never counted, but class 0 next to it has a boundary there
    assert e.gt[0] > 0 and e.gt.sum() == (boundary_mask(gt) & (gt != IGN)).sum()


def test_boundary_matches_the_official_per_class_erosion():
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(3)
    for shape in [(37, 53), (120, 90)]:
        labels = np.zeros(shape, np.int64)
        for value in (1, 2, 1000):
            y, x = rng.integers(0, shape[0] - 10), rng.integers(0, shape[1] - 10)
            labels[y : y + rng.integers(5, 40), x : x + rng.integers(5, 40)] = value
        labels[rng.random(shape) < 0.01] = 3
        # PASS src/utils.py mask_to_boundary, applied per label as EvalDataset.get_boundary_mask does
        h, w = shape
        d = max(1, int(round(0.03 * np.sqrt(h**2 + w**2))))
        expected = np.zeros(shape, bool)
        for v in np.unique(labels):
            mask = (labels == v).astype(np.uint8) * 255
            padded = cv2.copyMakeBorder(mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
            eroded = cv2.erode(padded, np.ones((3, 3), np.uint8), iterations=d)[1 : h + 1, 1 : w + 1]
            expected |= (mask - eroded) > 0
        np.testing.assert_array_equal(boundary_mask(labels), expected)
