"""The opening of ``RUN/report.html``: final scores, the stage ladder, clustering, mask quality, overlays.

The ladder comes from ``RUN/ladder.json`` (``make bench-pipeline``: sibling runs without saliency and
with the other head) when it exists; otherwise the report computes the ladder one run can give.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tools.config.loader import read_saved_config
from tools.data.imagenet_s import ImageNetS
from tools.errors import LussError
from tools.report import plots
from tools.report.html_parts import grid_table, image, note
from tools.report.ladder import (
    ALL_BACKGROUND,
    PSEUDO_LABELS,
    PSEUDO_LABELS_PLAIN,
    REFINE,
    Ladder,
    LadderStep,
    cluster_summary,
    finetune_step_name,
    nested,
    pseudo_label_step,
    read_cluster_report,
    read_ladder,
    score_step,
)
from tools.report.ladder_rows import LADDER_HEADER, MASK_QUALITY, cluster_rows, ladder_rows
from tools.report.overlay_rows import overlay_rows
from tools.run_layout import RunLayout

TRAIN_GROUND_TRUTH_NOTE = (
    "Mask quality is measured against train ground truth, which only the built-in demo has "
    "(DATA/train-segmentation/). It is used only to measure and report, never in training; on other "
    "datasets only the foreground fractions are shown."
)
SCORE_ROWS = (("mIoU", "miou"), ("Acc", "acc"), ("F-measure", "fmeasure"), ("boundary mIoU", "mbiou"))


def _all_background(data_root: Path, workers: int) -> LadderStep:
    from tools.evaluation.all_background import score_all_background

    try:
        return score_step(ALL_BACKGROUND, score_all_background(data_root, workers=workers))
    except LussError:
        return LadderStep(ALL_BACKGROUND, None, None, "no validation ground truth")


def single_run_ladder(layout: RunLayout, data_root: Path, scores: dict, workers: int) -> Ladder:
    """What one run can show: all background, its pseudo-labels at t, + finetune, + refine (if any)."""
    config = read_saved_config(layout.config_file)
    report = read_cluster_report(layout.root)
    saliency = nested(config, "cluster", "saliency", "enabled")
    name = {True: PSEUDO_LABELS, False: PSEUDO_LABELS_PLAIN}.get(saliency, "pseudo-labels")
    pseudo = (
        pseudo_label_step(name, report)
        if "validation_miou" in report
        else LadderStep(name, None, None, "cluster stage not finished")
    )
    head = nested(config, "finetune", "head") or "configured"
    steps = [_all_background(data_root, workers), pseudo, score_step(finetune_step_name(head), scores["raw"])]
    if scores.get("refined") is not None:
        steps.append(score_step(REFINE, scores["refined"]))
    clusters = {"this run": cluster_summary(report)} if report else {}
    return Ladder("this run", steps, clusters)


def _final_scores(scored: dict) -> str:
    if not scored:
        return note("no scored validation predictions yet (run luss predict --split validation)")
    rows = [
        [label, *("-" if getattr(s, key) is None else f"{getattr(s, key):.2f}" for s in scored.values())]
        for label, key in SCORE_ROWS
    ]
    return grid_table(["validation", *scored], rows, "scores")


def _ladder(ladder: Ladder, from_file: bool) -> str:
    if from_file:
        seed = "" if ladder.seed is None else f", seed {ladder.seed}"
        source = f"From RUN/ladder.json ({ladder.source}{seed}): sibling runs share this run's Stage 1."
    else:
        source = (
            "Computed from this run (make bench-pipeline adds the runs without saliency and with the "
            "other head)."
        )
    return note(source) + grid_table(LADDER_HEADER, ladder_rows(ladder), "ladder")


def _clusters(clusters: dict[str, dict[str, Any]]) -> str:
    header, rows = cluster_rows(clusters)
    clustering = grid_table(header, rows, "clusters") if rows else note("no k-means yet")
    header, rows = cluster_rows(clusters, MASK_QUALITY)
    quality = grid_table(header, rows, "mask-quality") + note(TRAIN_GROUND_TRUTH_NOTE) if rows else ""
    quality = quality or note("no saliency or pseudo-label quality in the cluster report (older run?)")
    return (
        "<h3>Clustering (train images, accuracy and NMI against the class of each image)</h3>"
        + clustering
        + "<h3>Diagnostics: saliency, train pseudo-labels, the features on the true object</h3>"
        + quality
    )


def headline_html(
    layout: RunLayout, data: ImageNetS, prediction_dirs: dict, scores: dict, workers: int
) -> str:
    """The report's first section; ``scores`` maps "raw"/"refined" to a ScoreResult or None."""
    scored = {label: s for label, s in scores.items() if s is not None}
    stored = read_ladder(layout.root)
    ladder = stored or single_run_ladder(layout, data.root, scores, workers)
    parts = [
        "<h2>Headline</h2>",
        "<h3>Final validation scores</h3>",
        _final_scores(scored),
        "<h3>Stage ladder (validation mIoU, image-level Hungarian)</h3>",
        _ladder(ladder, stored is not None),
        _clusters(ladder.clusters),
    ]
    rows = overlay_rows(data, prediction_dirs, scores) if scored else []
    if rows:
        parts.append("<h3>Validation images: ground truth and predictions (mapped by match.json)</h3>")
        parts.append(image(plots.overlays(rows, data.num_classes), "overlays"))
    return "\n".join(parts)
