"""Per-image statistics of the official evaluator, fully vectorised, and their running totals.

One image gives count vectors of ``K = C + 1`` bins: predicted area, GT area and true positives,
the same three per size bucket, and (with boundaries) the same six on the boundary bands; plus its
F-score and whether its image-level label is right. Sums over images give every metric.

Official behaviour reproduced (ImageNet-S ``data/data.py::EvalDataset`` + ``evaluation/metric.py``,
PASS ``src/singlecropdataset.py`` + ``src/metric.py``):

* pixels with GT 1000 are dropped before counting, but boundaries were computed on the full maps;
* a predicted id outside ``0..C`` is no prediction of any class, yet its pixel keeps its GT area,
  and counts as foreground for the F-score (``predict > 0``);
* bucket ``b`` counts background pixels plus the pixels of the GT classes in ``b``, only when some
  class falls in ``b`` in this image; a boundary pixel counts for the bucket of its *GT* class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from tools.data.label_codec import IGNORE_ID
from tools.evaluation.metrics import BUCKETS, class_buckets, fmeasure, image_correct

NUM_BUCKETS = len(BUCKETS)


@dataclass
class AreaCounts:
    """Predicted area, GT area and true positives per class (``[K]``), overall and per bucket (``[4, K]``)."""

    pred: np.ndarray
    gt: np.ndarray
    tp: np.ndarray
    bucket_pred: np.ndarray
    bucket_gt: np.ndarray
    bucket_tp: np.ndarray

    @classmethod
    def zeros(cls, num_bins: int) -> AreaCounts:
        vectors = [np.zeros(num_bins, np.int64) for _ in range(3)]
        matrices = [np.zeros((NUM_BUCKETS, num_bins), np.int64) for _ in range(3)]
        return cls(*vectors, *matrices)

    def add(self, other: AreaCounts) -> None:
        for name in ("pred", "gt", "tp", "bucket_pred", "bucket_gt", "bucket_tp"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class ImageStats:
    """Everything one image contributes to the split's scores."""

    areas: AreaCounts
    edges: AreaCounts | None  # boundary bands; None when boundaries are off
    fmeasure: float
    correct: bool


@dataclass
class ScoreTotals:
    """Running sums over images. Sums are integers, so any order or split over workers gives the same."""

    num_bins: int
    boundary: bool
    areas: AreaCounts = field(init=False)
    edges: AreaCounts | None = field(init=False)
    fmeasures: list[float] = field(default_factory=list)
    num_correct: int = 0

    def __post_init__(self) -> None:
        self.areas = AreaCounts.zeros(self.num_bins)
        self.edges = AreaCounts.zeros(self.num_bins) if self.boundary else None

    @property
    def num_images(self) -> int:
        return len(self.fmeasures)

    def add(self, stats: ImageStats) -> None:
        self.areas.add(stats.areas)
        if self.edges is not None and stats.edges is not None:
            self.edges.add(stats.edges)
        self.fmeasures.append(stats.fmeasure)
        self.num_correct += int(stats.correct)

    def merge(self, other: ScoreTotals) -> None:
        self.areas.add(other.areas)
        if self.edges is not None and other.edges is not None:
            self.edges.add(other.edges)
        self.fmeasures.extend(other.fmeasures)
        self.num_correct += other.num_correct

    def mean_fmeasure(self) -> float:
        # fsum: exact, so the value does not depend on how images were split over workers.
        return math.fsum(self.fmeasures) / max(1, self.num_images)


def _area_counts(
    gt_ids: np.ndarray,
    tp_ids: np.ndarray,
    pred_bin: np.ndarray,
    group: np.ndarray,
    buckets: np.ndarray,
    k: int,
) -> AreaCounts:
    """Count vectors from three pixel sets.

    ``gt_ids``: GT ids of the pixels counted in GT area; ``tp_ids``: GT ids of the true positives;
    ``pred_bin``: predicted id (``k`` for ids outside ``0..C``) of the pixels counted in predicted
    area, and ``group``: the bucket of their GT class (``NUM_BUCKETS`` for background).
    """
    area_gt = np.bincount(gt_ids, minlength=k)
    tp = np.bincount(tp_ids, minlength=k)
    by_group = np.bincount(group * (k + 1) + pred_bin, minlength=(NUM_BUCKETS + 1) * (k + 1))
    by_group = by_group.reshape(NUM_BUCKETS + 1, k + 1)[:, :k]  # drop the out-of-range bin
    counts = AreaCounts.zeros(k)
    counts.pred, counts.gt, counts.tp = by_group.sum(0), area_gt, tp
    for b in range(NUM_BUCKETS):
        members = buckets == b
        if not members.any():
            continue  # official: a bucket with no class in this image adds nothing, not even background
        members[0] = True
        counts.bucket_pred[b] = by_group[b] + by_group[NUM_BUCKETS]
        counts.bucket_gt[b] = np.where(members, area_gt, 0)
        counts.bucket_tp[b] = np.where(members, tp, 0)
    return counts


def image_stats(
    pred: np.ndarray,
    gt: np.ndarray,
    num_classes: int,
    pred_edge: np.ndarray | None = None,
    gt_edge: np.ndarray | None = None,
) -> ImageStats:
    """Statistics of one image.

    ``pred``: ``[H, W]`` matched prediction ids (any non-negative ints); ``gt``: ``[H, W]`` ids in
    ``0..C`` or 1000; ``pred_edge`` / ``gt_edge``: ``boundary_mask`` of the (raw) prediction and of
    the GT on the full maps, or both None to skip boundaries.
    """
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from ground truth {gt.shape}")
    k = num_classes + 1
    valid = gt != IGNORE_ID
    g = gt[valid].astype(np.int64)
    p = pred[valid].astype(np.int64)
    if g.size and g.max() > num_classes:
        raise ValueError(f"ground-truth id {int(g.max())} is outside 0..{num_classes} and not {IGNORE_ID}")
    pred_bin = np.where((p >= 0) & (p <= num_classes), p, k)
    hit = pred_bin == g

    buckets = class_buckets(np.bincount(g, minlength=k))
    group_of_class = np.where(buckets >= 0, buckets, NUM_BUCKETS)
    group_of_class[0] = NUM_BUCKETS
    group = group_of_class[g]

    areas = _area_counts(g, g[hit], pred_bin, group, buckets, k)
    edges = None
    if pred_edge is not None and gt_edge is not None:
        pe = pred_edge[valid]
        ge = gt_edge[valid]
        # Official boundary maps hold "id + 1 on the band, 0 elsewhere" and are counted by histc
        # over 0..C+1 minus bin 0: a predicted band pixel counts under its predicted id, a GT band
        # pixel under its GT id, a hit only where both bands carry the same id.
        edges = _area_counts(g[ge], g[ge & pe & hit], pred_bin[pe], group[pe], buckets, k)

    gt_fg = g > 0
    pred_fg = p > 0
    f = float(fmeasure(int(gt_fg.sum()), int(pred_fg.sum()), int((gt_fg & pred_fg).sum())))
    return ImageStats(areas, edges, f, image_correct(areas.pred, areas.gt))
