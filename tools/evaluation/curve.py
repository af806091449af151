"""``threshold_curve``: the PASS ``evaluator.py --curve`` sweep in one read of every image.

For each threshold ``t`` the official code zeroes the prediction where the ``.npy`` attention is
below ``t``, recomputes the image-level Hungarian, and prints Acc / mIoU / F-measure; the best ``t``
is the one with the highest mIoU (first on ties, ``np.argmax``).

Instead of T scorings, each image is read once: its attention is digitised against the sorted
float32 thresholds (``level`` = how many thresholds it reaches, so a pixel keeps its id at
threshold ``j`` iff ``j < level``), and one bincount over ``(level, predicted id, GT class)`` with a
reverse cumulative sum gives the image's pixel confusion at *every* threshold, over the few ids
present in it. After all images, each threshold gets its own Hungarian, and the per-image tables
are relabelled by it. The full score (boundaries, buckets) is then computed at the best ``t``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tools.data.imagenet_s import ImageNetS
from tools.data.label_codec import IGNORE_ID, read_label_png
from tools.errors import LabelFormatError, LussError
from tools.evaluation.hungarian import cooccurrence_from_pairs, match_from_cooccurrence
from tools.evaluation.metrics import fmeasure, iou_per_class
from tools.evaluation.scorer import (
    ScoreItem,
    ScoreResult,
    as_dataset,
    chunked,
    list_score_items,
    load_attention,
    load_gt,
    run_chunks,
    score_predictions,
)
from tools.workers import worker_count

DEFAULT_T_MIN, DEFAULT_T_MAX, DEFAULT_T_STEP = 0.0, 0.80, 0.01


def threshold_range(
    t_min: float = DEFAULT_T_MIN, t_max: float = DEFAULT_T_MAX, step: float = DEFAULT_T_STEP
) -> list[float]:
    """``t_min, t_min + step, ..., t_max`` (inclusive), rounded so 0.07 is the float 7 / 100 is."""
    if step <= 0 or t_max < t_min:
        raise ValueError(f"need step > 0 and t_max >= t_min, got {t_min}..{t_max} step {step}")
    count = int(math.floor((t_max - t_min) / step + 1e-9)) + 1
    return [round(t_min + i * step, 10) for i in range(count)]


@dataclass
class ImageTable:
    """One image's pixel confusion at every threshold, over the ids present in it.

    ``conf[j, u, g]``: pixels whose prediction at threshold ``j`` is ``pred_ids[u]`` and whose GT is
    ``gt_ids[g]``; index 0 of both axes is background.
    """

    pred_ids: np.ndarray  # [U + 1], 0 first
    gt_ids: np.ndarray  # [G + 1], 0 first
    conf: np.ndarray  # [T, U + 1, G + 1] int64


def image_table(pred: np.ndarray, gt: np.ndarray, level: np.ndarray, num_thresholds: int) -> ImageTable:
    """Build the table of one image; ``level`` = number of thresholds each pixel's attention reaches."""
    valid = gt != IGNORE_ID
    p, g, lev = pred[valid], gt[valid], level[valid]
    pred_ids = np.flatnonzero(np.bincount(p, minlength=1))
    gt_ids = np.flatnonzero(np.bincount(g, minlength=1))
    pred_ids = np.concatenate(([0], pred_ids[pred_ids > 0]))
    gt_ids = np.concatenate(([0], gt_ids[gt_ids > 0]))
    n_u, n_g = len(pred_ids), len(gt_ids)
    pred_index = np.zeros(int(pred_ids[-1]) + 1, np.int64)
    pred_index[pred_ids] = np.arange(n_u)
    gt_index = np.zeros(int(gt_ids[-1]) + 1, np.int64)
    gt_index[gt_ids] = np.arange(n_g)
    flat = (lev.astype(np.int64) * n_u + pred_index[p]) * n_g + gt_index[g]
    hist = np.bincount(flat, minlength=(num_thresholds + 1) * n_u * n_g).reshape(num_thresholds + 1, n_u, n_g)
    # kept[j] = pixels with level > j: they keep their predicted id at threshold j.
    kept = np.cumsum(hist[::-1], axis=0)[::-1][1:]
    conf = kept.copy()
    conf[:, 0, :] = hist.sum(axis=(0, 1))[None, :] - kept[:, 1:, :].sum(axis=1)
    return ImageTable(pred_ids, gt_ids, conf)


@dataclass(frozen=True)
class _CurveJob:
    items: tuple[ScoreItem, ...]
    num_classes: int
    thresholds: tuple[float, ...]


def _curve_chunk(job: _CurveJob) -> list[ImageTable]:
    t32 = np.asarray(job.thresholds, dtype=np.float32)
    out = []
    for item in job.items:
        gt = load_gt(item.gt_path, job.num_classes)
        pred = read_label_png(item.pred_path)
        if pred.shape != gt.shape:
            raise LabelFormatError(
                f"{item.pred_path}: prediction is {pred.shape} (HxW) but {item.gt_path} is {gt.shape}."
            )
        top = int(pred[gt != IGNORE_ID].max(initial=0))
        if top > job.num_classes:
            raise LabelFormatError(
                f"{item.pred_path}: predicted id {top} is outside 0..{job.num_classes}; the curve recomputes "
                "the one-to-one Hungarian per threshold and needs ids in 0..C."
            )
        # side="right": level counts thresholds <= attention, i.e. those the pixel survives
        # (`logit < t` zeroes it); NaN sorts last and survives all, as `NaN < t` is False.
        level = np.searchsorted(t32, load_attention(item, gt.shape), side="right")
        out.append(image_table(pred, gt, level, len(t32)))
    return out


@dataclass
class CurveResult:
    """Per-threshold headline scores (percent) and the full score at the best threshold."""

    thresholds: list[float]
    miou: list[float]
    acc: list[float]
    fmeasure: list[float]
    matches: list[dict[int, int]]
    best_index: int
    best: ScoreResult

    @property
    def best_threshold(self) -> float:
        return self.thresholds[self.best_index]

    def to_dict(self) -> dict[str, Any]:
        return {
            "best_threshold": self.best_threshold,
            "curve": [
                {"threshold": t, "miou": m, "acc": a, "fmeasure": f}
                for t, m, a, f in zip(self.thresholds, self.miou, self.acc, self.fmeasure, strict=True)
            ],
            "best": self.best.to_dict(),
        }


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


def curve_matches(
    tables: Sequence[ImageTable], num_classes: int, num_thresholds: int
) -> list[dict[int, int]]:
    """The Hungarian of every threshold from the per-image tables."""
    gt_img, gt_ids, pred_img, pred_ids, pred_reach = [], [], [], [], []
    for i, table in enumerate(tables):
        gt_img.append(np.full(len(table.gt_ids) - 1, i))
        gt_ids.append(table.gt_ids[1:])
        # An id present at threshold j is present at every lower one: keep how many it reaches.
        present = table.conf[:, 1:, :].sum(axis=2) > 0
        pred_img.append(np.full(len(table.pred_ids) - 1, i))
        pred_ids.append(table.pred_ids[1:])
        pred_reach.append(present.sum(axis=0))
    g_img, g_ids, p_img, p_ids, reach = map(_concat, (gt_img, gt_ids, pred_img, pred_ids, pred_reach))
    matches = []
    for j in range(num_thresholds):
        keep = reach > j
        matrix = cooccurrence_from_pairs(p_img[keep], p_ids[keep], g_img, g_ids, len(tables), num_classes)
        matches.append(match_from_cooccurrence(matrix))
    return matches


def curve_scores(
    tables: Sequence[ImageTable], matches: Sequence[dict[int, int]], num_classes: int
) -> tuple[list[float], list[float], list[float]]:
    """Per-threshold mIoU, Acc, F-measure (percent) with the tables relabelled by each threshold's match."""
    num_t, k = len(matches), num_classes + 1
    luts = np.zeros((num_t, k), np.int64)
    for j, match in enumerate(matches):
        for pred_id, class_id in match.items():
            luts[j, pred_id] = class_id
    tp = np.zeros((num_t, k), np.int64)
    area_pred = np.zeros((num_t, k), np.int64)
    area_gt = np.zeros(k, np.int64)
    f_values = np.zeros((num_t, len(tables)))
    correct = np.zeros(num_t, np.int64)
    rows_t = np.arange(num_t)[:, None]
    for i, table in enumerate(tables):
        mapped = luts[:, table.pred_ids]  # [T, U+1]; a bijection, so no id repeats within a row
        rows = table.conf.sum(axis=2)  # predicted area of each id, [T, U+1]
        cols = table.conf[0].sum(axis=0)  # GT area does not depend on the threshold
        area_gt[table.gt_ids] += cols
        area_pred[rows_t, mapped] += rows
        same = mapped[:, :, None] == table.gt_ids[None, None, :]
        tp[:, table.gt_ids] += (table.conf * same).sum(axis=1)
        f_values[:, i] = fmeasure(
            cols[1:].sum(), rows[:, 1:].sum(axis=1), table.conf[:, 1:, 1:].sum(axis=(1, 2))
        )
        if len(table.pred_ids) > 1:
            # Official Acc: argmax over classes 1..C of the matched predicted area, first on ties.
            fg_rows, fg_mapped = rows[:, 1:], mapped[:, 1:]
            best = fg_rows.max(axis=1)
            label = np.where(fg_rows == best[:, None], fg_mapped, k).min(axis=1)
            correct += (best > 0) & np.isin(label, table.gt_ids[1:])
    n = max(1, len(tables))
    miou = [100.0 * float(np.mean(iou_per_class(tp[j], area_pred[j], area_gt))) for j in range(num_t)]
    acc = [100.0 * int(c) / n for c in correct]
    fm = [100.0 * (math.fsum(f_values[j]) / n) for j in range(num_t)]  # same rounding as the scorer
    return miou, acc, fm


def threshold_curve(
    pred_dir: str | os.PathLike[str],
    data: ImageNetS | str | os.PathLike[str],
    split: str = "validation",
    thresholds: Sequence[float] | None = None,
    workers: int = 0,
    progress: bool = True,
) -> CurveResult:
    """Sweep attention thresholds (default 0.00..0.80 step 0.01), Hungarian per threshold, best by mIoU."""
    thresholds = threshold_range() if thresholds is None else [float(t) for t in thresholds]
    if not thresholds:
        raise LussError("the threshold curve needs at least one threshold")
    if any(b <= a for a, b in zip(np.float32(thresholds[:-1]), np.float32(thresholds[1:]), strict=True)):
        raise LussError(f"thresholds must be strictly increasing (as float32), got {thresholds}")
    data = as_dataset(data)
    num_classes = data.num_classes
    items = list_score_items(pred_dir, data, split)
    workers = worker_count(workers, len(items))
    chunks = chunked(items, workers)
    jobs = [_CurveJob(chunk, num_classes, tuple(thresholds)) for chunk in chunks]
    tables: list[ImageTable] = []
    for part in run_chunks(_curve_chunk, jobs, [len(c) for c in chunks], workers, "curve", progress):
        tables.extend(part)
    matches = curve_matches(tables, num_classes, len(thresholds))
    miou, acc, fm = curve_scores(tables, matches, num_classes)
    best_index = int(np.argmax(miou))
    best = score_predictions(
        pred_dir,
        data,
        split,
        match=matches[best_index],
        workers=workers,
        boundary=True,
        threshold=thresholds[best_index],
        progress=progress,
    )
    return CurveResult(thresholds, miou, acc, fm, matches, best_index, best)
