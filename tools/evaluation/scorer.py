"""``score_predictions``: the official ImageNet-S evaluator, vectorised and parallel over images.

What is read (PASS ``evaluator.py`` layout): every GT PNG ``ROOT/<split>-segmentation/<wnid>/<stem>.png``
and its prediction ``PRED/<wnid>/<stem>.png`` (RGB, id = R + 256*G, same H x W). Only the GT PNGs
are needed from the dataset, not the JPEGs. With a threshold ``t``, ``PRED/<wnid>/<stem>.npy``
(float ``[H, W]`` attention) zeroes the pixels scoring below ``t``.

Matching: ``match=None`` recomputes the image-level Hungarian on these (thresholded) predictions, as
PASS does; a given match is applied as a dict lookup, as ImageNet-S ``evaluator.py --match`` does
(boundaries are extracted on the raw ids and then relabelled, its order; for a bijection both
orders agree).

Departures, all on the side of telling the user: a missing prediction, a size mismatch, a predicted
id the match lacks and a missing ``.npy`` (when a threshold is given) are errors naming the file,
where the official code crashes mid-run or (for ``.npy``) silently skips the threshold.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from tools.data.imagenet_s import ImageNetS
from tools.data.label_codec import IGNORE_ID, read_label_png
from tools.errors import DatasetError, LabelFormatError, SubmissionError
from tools.evaluation.boundary import boundary_mask
from tools.evaluation.hungarian import hungarian_match
from tools.evaluation.metrics import BOUNDARY_BUCKETS, BUCKETS, bucket_mean_iou, iou_per_class
from tools.evaluation.per_image import ScoreTotals, image_stats
from tools.progress import progress_bar
from tools.workers import chunk_size, worker_count

MAX_CHUNK = 16


@dataclass(frozen=True)
class ScoreItem:
    """One scored image: its GT PNG, its prediction PNG and its optional attention map."""

    key: str  # <wnid>/<stem>
    gt_path: Path
    pred_path: Path

    @property
    def attention_path(self) -> Path:
        return self.pred_path.with_suffix(".npy")


@dataclass
class ScoreResult:
    """Scores of one split. All scores are percentages (x100), like the official prints."""

    miou: float
    acc: float
    fmeasure: float
    mbiou: float | None  # None when boundaries were off
    buckets: dict[str, float | None]  # S, MS, ML, L, BS, BMS, BML, BL; None: no class in that bucket
    per_class_iou: list[float]  # C + 1 entries, background first
    per_class_biou: list[float] | None
    match: dict[int, int]
    num_images: int
    split: str
    threshold: float | None
    class_names: list[str]  # "background" then the wnids
    pixel_counts: dict[str, list[int]]  # "tp", "pred", "gt" per class, summed over the split

    @property
    def num_classes(self) -> int:
        return len(self.per_class_iou) - 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: every number, the match with string keys (as match.json)."""
        return {
            "split": self.split,
            "threshold": self.threshold,
            "num_images": self.num_images,
            "num_classes": self.num_classes,
            "miou": self.miou,
            "acc": self.acc,
            "fmeasure": self.fmeasure,
            "mbiou": self.mbiou,
            "buckets": dict(self.buckets),
            "class_names": list(self.class_names),
            "per_class_iou": list(self.per_class_iou),
            "per_class_biou": None if self.per_class_biou is None else list(self.per_class_biou),
            "pixel_counts": {k: list(v) for k, v in self.pixel_counts.items()},
            "match": {str(k): v for k, v in sorted(self.match.items())},
        }


def _percent(value: float | None) -> float | None:
    return None if value is None else 100.0 * value


def result_from_totals(
    totals: ScoreTotals,
    match: dict[int, int],
    class_names: list[str],
    split: str,
    threshold: float | None,
) -> ScoreResult:
    """Reduce summed counts to the official scores (ImageNet-S/PASS ``evaluator.py``)."""
    areas = totals.areas
    iou = iou_per_class(areas.tp, areas.pred, areas.gt)
    buckets: dict[str, float | None] = {
        name: _percent(bucket_mean_iou(areas.bucket_tp[b], areas.bucket_pred[b], areas.bucket_gt[b]))
        for b, name in enumerate(BUCKETS)
    }
    mbiou = None
    biou_list = None
    edges = totals.edges
    for b, name in enumerate(BOUNDARY_BUCKETS):
        buckets[name] = (
            None
            if edges is None
            else _percent(bucket_mean_iou(edges.bucket_tp[b], edges.bucket_pred[b], edges.bucket_gt[b]))
        )
    if edges is not None:
        biou = iou_per_class(edges.tp, edges.pred, edges.gt)
        mbiou = 100.0 * float(np.mean(biou))
        biou_list = [100.0 * float(v) for v in biou]
    n = max(1, totals.num_images)
    return ScoreResult(
        miou=100.0 * float(np.mean(iou)),
        acc=100.0 * totals.num_correct / n,
        fmeasure=100.0 * totals.mean_fmeasure(),
        mbiou=mbiou,
        buckets=buckets,
        per_class_iou=[100.0 * float(v) for v in iou],
        per_class_biou=biou_list,
        match=dict(match),
        num_images=totals.num_images,
        split=split,
        threshold=threshold,
        class_names=list(class_names),
        pixel_counts={"tp": areas.tp.tolist(), "pred": areas.pred.tolist(), "gt": areas.gt.tolist()},
    )


# ----------------------------------------------------------------------------------------------
# Listing and reading


def as_dataset(data: ImageNetS | str | os.PathLike[str]) -> ImageNetS:
    return data if isinstance(data, ImageNetS) else ImageNetS(data)


def list_score_items(pred_dir: str | os.PathLike[str], data: ImageNetS, split: str) -> list[ScoreItem]:
    """Every GT PNG of the split, paired with its prediction path; missing predictions are an error."""
    pred_dir = Path(pred_dir)
    seg_dir = data.segmentation_dir(split)
    if not seg_dir.is_dir():
        raise DatasetError(
            f"{seg_dir}: no ground truth for split {split!r}. Scoring needs "
            f"{seg_dir.name}/<wnid>/<stem>.png (test GT exists only on the server)."
        )
    if not pred_dir.is_dir():
        raise SubmissionError(f"{pred_dir}: prediction folder not found (expected PRED/<wnid>/<stem>.png).")
    items = [
        ScoreItem(f"{wnid.name}/{png.stem}", png, pred_dir / wnid.name / png.name)
        for wnid in sorted(p for p in seg_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
        for png in sorted(wnid.glob("*.png"))
        if not png.name.startswith(".")
    ]
    if not items:
        raise DatasetError(f"{seg_dir}: no <wnid>/<stem>.png ground-truth files.")
    missing = [str(item.pred_path) for item in items if not item.pred_path.is_file()]
    if missing:
        raise SubmissionError(
            f"{pred_dir}: {len(missing)} of {len(items)} predictions are missing, first {missing[0]}. "
            "PRED must hold one RGB PNG per ground-truth PNG, at PRED/<wnid>/<stem>.png.",
            problems=[f"missing {m}" for m in missing],
        )
    return items


def load_gt(path: Path, num_classes: int) -> np.ndarray:
    """GT ids, checked to be in ``0..C`` or the ignore id."""
    gt = read_label_png(path)
    bad = (gt > num_classes) & (gt != IGNORE_ID)
    if bad.any():
        raise DatasetError(
            f"{path}: ground-truth id {int(gt[bad][0])} is outside 0..{num_classes} and not {IGNORE_ID}; "
            f"is --data the right ImageNet-S variant ({num_classes} classes)?"
        )
    return gt


def load_attention(item: ScoreItem, shape: tuple[int, ...]) -> np.ndarray:
    """The float32 attention map of a prediction (the official code casts to float32 too)."""
    path = item.attention_path
    if not path.is_file():
        raise SubmissionError(
            f"{path}: attention map missing; a threshold needs PRED/<wnid>/<stem>.npy next to every "
            "prediction PNG (float [H, W], as `luss predict` saves it)."
        )
    try:
        attn = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise SubmissionError(f"{path}: cannot read as a .npy array ({exc}).") from exc
    if attn.shape != shape or not np.issubdtype(attn.dtype, np.floating):
        raise SubmissionError(
            f"{path}: attention map is {attn.dtype} {attn.shape}; expected a float array of the "
            f"ground-truth size {shape} ({item.gt_path})."
        )
    return attn.astype(np.float32, copy=False)


def load_pair(item: ScoreItem, num_classes: int, threshold: float | None) -> tuple[np.ndarray, np.ndarray]:
    """``(prediction, gt)`` ids of one image, the threshold applied to the prediction."""
    gt = load_gt(item.gt_path, num_classes)
    pred = read_label_png(item.pred_path)
    if pred.shape != gt.shape:
        raise LabelFormatError(
            f"{item.pred_path}: prediction is {pred.shape[1]}x{pred.shape[0]} (WxH) but its ground truth "
            f"{item.gt_path} is {gt.shape[1]}x{gt.shape[0]}; predictions must be written at the "
            "original image size (the evaluator never resizes)."
        )
    if threshold is not None:
        # float32 on both sides, like the official `prediction[logit < t] = 0` on a float32 map.
        pred[load_attention(item, gt.shape) < np.float32(threshold)] = 0
    return pred, gt


# ----------------------------------------------------------------------------------------------
# Parallel map over chunks of images

J = TypeVar("J")
R = TypeVar("R")


def chunked(items: Sequence[ScoreItem], workers: int) -> list[tuple[ScoreItem, ...]]:
    """Chunks small enough to balance the workers, large enough to keep pickling cheap."""
    size = chunk_size(len(items), workers, MAX_CHUNK)
    return [tuple(items[i : i + size]) for i in range(0, len(items), size)]


def run_chunks(
    fn: Callable[[J], R], jobs: Sequence[J], sizes: Sequence[int], workers: int, label: str, progress: bool
) -> Iterator[R]:
    """``fn(job)`` for every job, in order; in a process pool when ``workers > 1``."""
    n_proc = min(workers, len(jobs))
    pool = None
    if n_proc > 1:
        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        # Created (and forked) before the progress bar starts its refresh thread.
        pool = ctx.Pool(n_proc)
    try:
        with progress_bar(label, sum(sizes), progress) as advance:
            results = pool.imap(fn, jobs) if pool is not None else map(fn, jobs)
            for result, size in zip(results, sizes, strict=True):
                advance(size)
                yield result
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()


# ----------------------------------------------------------------------------------------------
# Workers (module level so they pickle)


@dataclass(frozen=True)
class _Job:
    items: tuple[ScoreItem, ...]
    num_classes: int
    threshold: float | None
    match: dict[int, int] | None = None
    boundary: bool = True


def _present_ids(labels: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.bincount(labels.ravel()))


def _presence_chunk(job: _Job) -> list[tuple[set[int], set[int]]]:
    """Per image: foreground ids predicted and GT classes present, both over non-ignored pixels."""
    out = []
    for item in job.items:
        pred, gt = load_pair(item, job.num_classes, job.threshold)
        valid = gt != IGNORE_ID
        pred_ids = _present_ids(pred[valid])
        if pred_ids.size and pred_ids[-1] > job.num_classes:
            raise LabelFormatError(
                f"{item.pred_path}: predicted id {int(pred_ids[-1])} is outside 0..{job.num_classes}. "
                "The Hungarian matching (no --match) pairs ids 1..C with the C classes one-to-one; "
                "over-clustered predictions need a match file mapping every id."
            )
        out.append(({int(v) for v in pred_ids if v}, {int(v) for v in _present_ids(gt[valid]) if v}))
    return out


def match_lut(match: dict[int, int]) -> np.ndarray:
    """Lookup table over every 16-bit id; -1 marks ids the match does not cover."""
    lut = np.full(1 << 16, -1, dtype=np.int64)
    keys = np.fromiter(match.keys(), dtype=np.int64)
    keep = keys < lut.size
    lut[keys[keep]] = np.fromiter(match.values(), dtype=np.int64)[keep]
    return lut


def _score_chunk(job: _Job) -> ScoreTotals:
    assert job.match is not None
    lut = match_lut(job.match)
    totals = ScoreTotals(job.num_classes + 1, job.boundary)
    for item in job.items:
        pred, gt = load_pair(item, job.num_classes, job.threshold)
        valid = gt != IGNORE_ID
        mapped = lut[pred]
        unmatched = np.unique(pred[valid & (mapped < 0)])
        if unmatched.size:
            raise LabelFormatError(
                f"{item.pred_path}: predicted id {int(unmatched[0])} has no entry in the match "
                f"(ids without one: {unmatched[:10].tolist()}). Every predicted id, 0 included, must be "
                "a key of match.json."
            )
        mapped[mapped < 0] = 0  # only ids under ignored pixels remain; they are never counted
        edges = (boundary_mask(pred), boundary_mask(gt)) if job.boundary else (None, None)
        totals.add(image_stats(mapped, gt, job.num_classes, *edges))
    return totals


# ----------------------------------------------------------------------------------------------


def recompute_match(
    items: Sequence[ScoreItem],
    num_classes: int,
    threshold: float | None,
    workers: int,
    progress: bool,
) -> dict[int, int]:
    """The official image-level Hungarian on these predictions (one read of every image)."""
    chunks = chunked(items, workers)
    jobs = [_Job(chunk, num_classes, threshold) for chunk in chunks]
    pred_sets: list[set[int]] = []
    gt_sets: list[set[int]] = []
    for part in run_chunks(_presence_chunk, jobs, [len(c) for c in chunks], workers, "matching", progress):
        for pred_ids, gt_ids in part:
            pred_sets.append(pred_ids)
            gt_sets.append(gt_ids)
    return hungarian_match(pred_sets, gt_sets, num_classes)


def score_items(
    items: Sequence[ScoreItem],
    num_classes: int,
    match: dict[int, int],
    threshold: float | None,
    boundary: bool,
    workers: int,
    progress: bool,
) -> ScoreTotals:
    chunks = chunked(items, workers)
    jobs = [_Job(chunk, num_classes, threshold, match, boundary) for chunk in chunks]
    totals = ScoreTotals(num_classes + 1, boundary)
    for part in run_chunks(_score_chunk, jobs, [len(c) for c in chunks], workers, "scoring", progress):
        totals.merge(part)
    return totals


def score_predictions(
    pred_dir: str | os.PathLike[str],
    data: ImageNetS | str | os.PathLike[str],
    split: str = "validation",
    match: dict[int, int] | None = None,
    workers: int = 0,
    boundary: bool = True,
    threshold: float | None = None,
    progress: bool = True,
) -> ScoreResult:
    """Score ``pred_dir/<wnid>/<stem>.png`` against the split's GT like the official evaluator.

    ``match=None`` recomputes the image-level Hungarian on these predictions; ``workers`` processes
    (0 = auto, :func:`tools.workers.worker_count`); ``threshold`` zeroes pixels whose ``.npy``
    attention is below it.
    """
    data = as_dataset(data)
    num_classes = data.num_classes
    items = list_score_items(pred_dir, data, split)
    workers = worker_count(workers, len(items))
    if match is None:
        match = recompute_match(items, num_classes, threshold, workers, progress)
    totals = score_items(items, num_classes, match, threshold, boundary, workers, progress)
    return result_from_totals(totals, match, ["background", *data.classes], split, threshold)
