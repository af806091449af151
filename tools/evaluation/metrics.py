"""The official ImageNet-S metric formulas on count vectors (ImageNet-S ``evaluation/{metric,evaluator}.py``,
PASS ``src/metric.py`` + ``evaluator.py``).

Count vectors have ``K = C + 1`` entries (0 = background). The official code fills them with
``torch.histc(bins=K, min=0, max=K-1)``, so a predicted id outside ``0..C`` is counted in no bin
while its pixel still counts in the GT area. All scores here are fractions; the scorer reports x100.
"""

from __future__ import annotations

import numpy as np

IOU_EPS = 1e-10
FMEASURE_BETA = 0.3  # used linearly, (1 + b) P R / (b P + R), not b^2 (official fscore/FMeasureGPU)
FMEASURE_EPS = 1e-20
BUCKETS = ("S", "MS", "ML", "L")
BOUNDARY_BUCKETS = ("BS", "BMS", "BML", "BL")
BUCKET_UPPER_PERCENT = (5, 25, 50)  # inclusive upper bounds of S, MS, ML; L is the rest
NO_BUCKET = -1


def iou_per_class(tp: np.ndarray, area_pred: np.ndarray, area_gt: np.ndarray) -> np.ndarray:
    """``TP / (pred + gt - TP + 1e-10)`` per class; a class absent from both gives 0."""
    tp = np.asarray(tp, dtype=np.float64)
    return tp / (np.asarray(area_pred, np.float64) + np.asarray(area_gt, np.float64) - tp + IOU_EPS)


def mean_iou(tp: np.ndarray, area_pred: np.ndarray, area_gt: np.ndarray) -> float:
    """Mean over *all* ``C + 1`` classes, background included (the headline mIoU)."""
    return float(np.mean(iou_per_class(tp, area_pred, area_gt)))


def bucket_mean_iou(tp: np.ndarray, area_pred: np.ndarray, area_gt: np.ndarray) -> float | None:
    """Mean IoU over the classes with GT pixels in the bucket (``[Ps > 0]``, ImageNet-S commit 89bce0f).

    ``None`` when no class has GT pixels there (the official ``torch.mean`` of nothing prints nan).
    """
    present = np.asarray(area_gt) > 0
    if not present.any():
        return None
    return float(np.mean(iou_per_class(tp, area_pred, area_gt)[present]))


def fmeasure(gt_fg: np.ndarray | int, pred_fg: np.ndarray | int, tp_fg: np.ndarray | int) -> np.ndarray:
    """Per-image foreground F-score from pixel counts (vectorised over any shape).

    ``gt_fg``: GT pixels > 0; ``pred_fg``: predicted pixels > 0 (ids above C included, as the
    official ``predict > 0``); ``tp_fg``: pixels that are both.
    """
    tp = np.asarray(tp_fg, dtype=np.float64)
    recall = tp / (np.asarray(gt_fg, np.float64) + FMEASURE_EPS)
    precision = tp / (np.asarray(pred_fg, np.float64) + FMEASURE_EPS)
    beta = FMEASURE_BETA
    return (1 + beta) * precision * recall / (beta * precision + recall + FMEASURE_EPS)


def size_percent(class_pixels: np.ndarray, valid_pixels: int) -> np.ndarray:
    """``ceil(100 * pixels / valid_pixels)`` computed in float32, as the official torch code does.

    ``100.0 * counts[c]`` is a float32 tensor divided by an int64 total, so the quotient is a float32;
    emulating it keeps a class exactly on a 5/25/50 % edge in the same bucket as the official run.
    """
    scaled = np.float32(100.0) * np.asarray(class_pixels).astype(np.float32)
    return np.ceil(scaled / np.float32(valid_pixels)).astype(np.int64)


def size_bucket(percent: np.ndarray) -> np.ndarray:
    """Bucket index 0..3 (S <= 5 %, MS <= 25 %, ML <= 50 %, L > 50 %) of each size percent."""
    return np.searchsorted(np.asarray(BUCKET_UPPER_PERCENT), np.asarray(percent), side="left")


def class_buckets(area_gt: np.ndarray) -> np.ndarray:
    """``[K]`` bucket index of every foreground class present in one image, ``NO_BUCKET`` elsewhere."""
    area_gt = np.asarray(area_gt)
    buckets = np.full(area_gt.shape, NO_BUCKET, dtype=np.int64)
    present = np.flatnonzero(area_gt[1:]) + 1
    if present.size:
        buckets[present] = size_bucket(size_percent(area_gt[present], int(area_gt.sum())))
    return buckets


def image_correct(area_pred: np.ndarray, area_gt: np.ndarray) -> bool:
    """Image-level Acc: the largest predicted foreground class (first on ties) is in the GT.

    An image without predicted foreground is wrong (argmax of zeros picks class 1 with zero area).
    """
    label = int(np.argmax(area_pred[1:])) + 1
    return bool(area_gt[label] > 0 and area_pred[label] > 0)
