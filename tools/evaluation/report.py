"""Rich tables for a score and a threshold curve (the official evaluator prints PrettyTables)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from tools.evaluation.metrics import BOUNDARY_BUCKETS, BUCKETS

if TYPE_CHECKING:
    from tools.evaluation.curve import CurveResult
    from tools.evaluation.scorer import ScoreResult


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def score_summary_table(result: ScoreResult) -> Table:
    threshold = "none" if result.threshold is None else f"{result.threshold:.2f}"
    table = Table(
        title=f"ImageNet-S {result.split}: {result.num_images} images, {result.num_classes} classes"
    )
    for name in ("mIoU", "Acc", "F-measure", "mBIoU", "threshold"):
        table.add_column(name, justify="right")
    table.add_row(_fmt(result.miou), _fmt(result.acc), _fmt(result.fmeasure), _fmt(result.mbiou), threshold)
    return table


def bucket_table(result: ScoreResult) -> Table:
    table = Table(title="mIoU by object size (S <= 5 %, MS <= 25 %, ML <= 50 %, L > 50 % of the image)")
    table.add_column("")
    for name in BUCKETS:
        table.add_column(name, justify="right")
    table.add_row("region", *(_fmt(result.buckets.get(name)) for name in BUCKETS))
    if result.mbiou is not None:
        table.add_row("boundary", *(_fmt(result.buckets.get(name)) for name in BOUNDARY_BUCKETS))
    return table


def per_class_table(result: ScoreResult) -> Table:
    table = Table(title="Per-class IoU")
    table.add_column("id", justify="right")
    table.add_column("class")
    table.add_column("IoU", justify="right")
    if result.per_class_biou is not None:
        table.add_column("BIoU", justify="right")
    for class_id, iou in enumerate(result.per_class_iou):
        row = [str(class_id), result.class_names[class_id], _fmt(iou)]
        if result.per_class_biou is not None:
            row.append(_fmt(result.per_class_biou[class_id]))
        table.add_row(*row)
    return table


def print_score_table(result: ScoreResult, console: Console | None = None) -> None:
    """Per-class IoU, the size buckets, then the headline scores (last, so they stay on screen)."""
    console = console or Console()
    console.print(per_class_table(result))
    console.print(bucket_table(result))
    console.print(score_summary_table(result))


def print_curve_table(curve: CurveResult, console: Console | None = None) -> None:
    """The sweep (best threshold marked), then the full score at the best threshold."""
    console = console or Console()
    table = Table(title="Threshold sweep (Hungarian recomputed per threshold)")
    for name in ("t", "mIoU", "Acc", "F-measure", ""):
        table.add_column(name, justify="right")
    for i, t in enumerate(curve.thresholds):
        best = i == curve.best_index
        table.add_row(
            f"{t:.2f}",
            _fmt(curve.miou[i]),
            _fmt(curve.acc[i]),
            _fmt(curve.fmeasure[i]),
            "best" if best else "",
            style="bold green" if best else None,
        )
    console.print(table)
    print_score_table(curve.best, console)
