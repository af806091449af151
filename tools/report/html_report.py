"""Assemble ``RUN/report.html``: a single file (figures inlined as base64 PNG), readable offline.

Order: the headline first (final scores, the stage ladder, clustering and mask diagnostics, overlays
of a few validation images), then per-stage metrics with loss and diagnostic curves, the cluster
report with the threshold sweep, per-class IoU of the raw (and refined) predictions, and last the
resolved config, folded. Whatever a run lacks yet (or an older run never logged) is said, not drawn.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

from tools.atomic_io import atomic_write_text
from tools.data.imagenet_s import ImageNetS
from tools.engine.skipped_images import read_skipped
from tools.report import plots
from tools.report.headline import headline_html
from tools.report.html_parts import grid_table, image, key_value_table, note
from tools.run_layout import RunLayout

TRAINING_STAGES = ("pretrain", "cluster/pixel_attention", "finetune")
DIAGNOSED_STAGES = ("pretrain", "cluster/pixel_attention")  # log emb_spread, attn_fg, ... (finetune not)
CLUSTER_KEYS = ("num_clusters", "num_train", "nmi", "cluster_accuracy", "threshold", "threshold_source")
STYLE = (
    "body{font-family:sans-serif;max-width:1100px;margin:auto}img{max-width:100%}"
    "table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #ccc;padding:2px 8px;"
    "text-align:right}th:first-child{text-align:left}pre{background:#f5f5f5;padding:8px;font-size:12px}"
    "summary>h2{display:inline}"
)


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by a kill: skip it
            continue
    return records


def _stage_section(layout: RunLayout, stage: str) -> str:
    records = _read_jsonl(layout.root / stage / "metrics.jsonl")
    summaries = [r for r in records if "epoch_end" in r]
    last = summaries[-1] if summaries else {}
    rows = [
        (k.removeprefix("epoch_"), v) for k, v in last.items() if k.startswith("epoch_") and k != "epoch_end"
    ]
    done = (layout.root / stage.split("/")[0] / ".done").is_file()
    header = f"<h3>{html.escape(stage)} ({'done' if done else 'not finished'})</h3>"
    if not records:
        return header + note("not run yet")
    diagnostics = plots.diagnostic_curves(stage, records)
    if diagnostics is not None:
        diagnostics_html = image(diagnostics, f"{stage} diagnostics")
    elif stage in DIAGNOSED_STAGES:
        diagnostics_html = note(f"{stage}: no learning diagnostics logged (a run from before they existed).")
    else:
        diagnostics_html = ""
    return (
        header
        + f"<p>epochs logged: {len(summaries)}; last epoch means:</p>"
        + key_value_table(rows)
        + image(plots.loss_curves(stage, records), f"{stage} curves")
        + diagnostics_html
    )


def _skipped_section(layout: RunLayout) -> str:
    """Every damaged image a training stage skipped (``<stage>/skipped*.jsonl``), by stage."""
    rows = [
        (stage, r.get("path", "?"), r.get("epoch", "?"), r.get("reason", ""))
        for stage in TRAINING_STAGES
        for r in read_skipped(layout.root / stage)
    ]
    if not rows:
        return "<h3>Skipped images</h3>" + note("none: every image the training stages drew loaded.")
    cells = "".join(
        "<tr>" + "".join(f"<td style='text-align:left'>{html.escape(str(c))}</td>" for c in row) + "</tr>"
        for row in rows
    )
    return (
        f"<h3>Skipped images ({len(rows)})</h3><p>Damaged files met during training and left out "
        "(another image stood in for each); repair them and train again for a run on every image.</p>"
        f"<table><tr><th>stage</th><th>file</th><th>epoch</th><th>reason</th></tr>{cells}</table>"
    )


def _cluster_section(layout: RunLayout) -> str:
    report_path = layout.cluster_file("report.json")
    if not report_path.is_file():
        return ""
    report = json.loads(report_path.read_text())
    rows = [(k, report.get(k)) for k in CLUSTER_KEYS]
    rows += [("pseudo-label validation mIoU", report.get("validation_miou"))]
    rows += [("validation foreground fraction", report.get("validation_foreground_fraction"))]
    curve = plots.threshold_curve(report.get("curve", []), report.get("threshold"))
    return "<h2>Clustering and threshold sweep</h2>" + key_value_table(rows) + image(curve, "threshold sweep")


def _score(pred_dir: Path, data: ImageNetS, workers: int):
    from tools.evaluation import load_match_file, score_predictions

    match_path = pred_dir / "match.json"
    if not match_path.is_file():
        return None
    match = load_match_file(match_path)
    return score_predictions(pred_dir, data, "validation", match=match, workers=workers, progress=False)


def _per_class_section(scored: dict) -> str:
    if not scored:
        return ""
    names = next(iter(scored.values())).class_names
    series = {label: s.per_class_iou for label, s in scored.items()}
    return "<h2>Per-class IoU</h2>" + image(plots.per_class_iou(names, series), "per-class IoU")


def _config_history(layout: RunLayout) -> str:
    """Who created the run's config and every later ``--set`` change (``RUN/config-history.jsonl``)."""
    from tools.config.run_config import read_config_history

    history = read_config_history(layout)
    if not history:
        return note("No RUN/config-history.jsonl (a run made before luss kept one).")
    rows = []
    for entry in history:
        if entry.get("created"):
            what = f"created from preset {entry.get('preset')}"
        else:
            what = "; ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in entry.get("changes", {}).items())
        sets = " ".join(f"--set {s}" for s in entry.get("sets", []))
        rows.append([str(entry.get("saved_at", "")), str(entry.get("command", "")), what, sets])
    return "<h3>History</h3>" + grid_table(["time", "command", "what changed", "flags"], rows)


def write_run_report(
    run_dir: str | os.PathLike[str], data_root: str | os.PathLike[str], workers: int = 0
) -> Path:
    """Write ``RUN/report.html`` from whatever the run holds so far; returns its path."""
    layout = RunLayout.at(run_dir)
    data = ImageNetS(data_root)
    prediction_dirs = {"raw": layout.predict_dir("validation"), "refined": layout.refine_dir("validation")}
    scores = {label: _score(folder, data, workers) for label, folder in prediction_dirs.items()}
    scored = {label: s for label, s in scores.items() if s is not None}
    config = layout.config_file.read_text() if layout.config_file.is_file() else "(no config.yaml yet)"
    parts = [
        f"<h1>luss run report: {html.escape(str(layout.root))}</h1>",
        headline_html(layout, data, prediction_dirs, scores, workers),
        "<h2>Training stages</h2>",
        *(_stage_section(layout, stage) for stage in TRAINING_STAGES),
        _skipped_section(layout),
        _cluster_section(layout),
        _per_class_section(scored),
        f"<details><summary><h2>Resolved config</h2></summary>{_config_history(layout)}"
        f"<pre>{html.escape(config)}</pre></details>",
    ]
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>luss report</title><style>{STYLE}</style>"
    )
    page += "</head><body>" + "\n".join(parts) + "</body></html>\n"
    out = layout.report_file
    atomic_write_text(out, page)
    return out
