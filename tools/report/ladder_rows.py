"""The ladder as rows of text, the same for the bench's terminal tables and the report's HTML tables."""

from __future__ import annotations

from typing import Any

from tools.report.ladder import Ladder, nested

LADDER_HEADER = ["step", "mIoU", "Acc", "vs. step before", "detail"]

# (row label, path into a cluster summary, format); a row shows when any cluster run has the key.
Metric = tuple[str, tuple[str, ...], str]
CLUSTERING: tuple[Metric, ...] = (
    ("cluster accuracy", ("cluster_accuracy",), "{:.3f}"),
    ("NMI", ("nmi",), "{:.3f}"),
    ("cluster accuracy without attention", ("no_attention", "cluster_accuracy"), "{:.3f}"),
    ("NMI without attention", ("no_attention", "nmi"), "{:.3f}"),
    ("chosen threshold t", ("threshold",), "{:.2f}"),
    ("pseudo-label validation mIoU at t", ("validation_miou",), "{:.2f}"),
)
# Measured against the demo's train ground truth (DATA/train-segmentation), never used in training.
MASK_QUALITY: tuple[Metric, ...] = (
    ("saliency: foreground fraction of train pixels", ("saliency", "coverage"), "{:.3f}"),
    ("saliency: ground-truth foreground fraction", ("saliency", "gt_coverage"), "{:.3f}"),
    ("saliency: IoU with the ground-truth foreground", ("saliency", "fg_iou"), "{:.3f}"),
    ("train pseudo-labels: foreground fraction", ("train_pseudo_labels", "coverage"), "{:.3f}"),
    (
        "train pseudo-labels: ground-truth foreground fraction",
        ("train_pseudo_labels", "gt_coverage"),
        "{:.3f}",
    ),
    (
        "train pseudo-labels: IoU with the ground-truth foreground",
        ("train_pseudo_labels", "fg_iou"),
        "{:.3f}",
    ),
    # Whether the features carry the class at all: k-means on them pooled over the true object.
    (
        "cluster accuracy, features pooled over the ground-truth object",
        ("ground_truth_object", "cluster_accuracy"),
        "{:.3f}",
    ),
)


def _number(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def ladder_rows(ladder: Ladder) -> list[list[str]]:
    """One row per step: name, mIoU, Acc, the change from the last step with a score, detail."""
    rows, before = [], None
    for step in ladder.steps:
        change = "" if step.miou is None or before is None else f"{step.miou - before:+.2f}"
        rows.append([step.name, _number(step.miou), _number(step.acc), change, step.detail])
        before = step.miou if step.miou is not None else before
    return rows


def cluster_rows(
    clusters: dict[str, dict[str, Any]], metrics: tuple[Metric, ...] = CLUSTERING
) -> tuple[list[str], list[list[str]]]:
    """``(header, rows)``: one column per cluster run, one row per metric that some run reports."""
    header = ["", *clusters]
    rows = []
    for label, path, fmt in metrics:
        values = [nested(summary, *path) for summary in clusters.values()]
        if any(isinstance(v, int | float) for v in values):
            rows.append([label, *("-" if v is None else fmt.format(v) for v in values)])
    return header, rows


def seed_rows(ladders: dict[int, Ladder]) -> tuple[list[str], list[list[str]]]:
    """``(header, rows)``: one row of step mIoUs per seed, then the mean and spread (max - min) of each."""
    names = list(dict.fromkeys(step.name for ladder in ladders.values() for step in ladder.steps))
    header = ["seed", *names]
    rows = [[str(seed), *(_number(ladder.miou(n)) for n in names)] for seed, ladder in ladders.items()]
    columns = [[v for v in (ladder.miou(n) for ladder in ladders.values()) if v is not None] for n in names]
    rows.append(["mean", *(_number(sum(c) / len(c)) if c else "-" for c in columns)])
    rows.append(["spread (max - min)", *(_number(max(c) - min(c)) if c else "-" for c in columns)])
    return header, rows
