"""Assemble ``RUN/report.html``: a single file (figures inlined as base64 PNG), readable offline.

Sections: resolved config, per-stage final metrics and loss curves, the cluster report with the
threshold sweep, validation scores and per-class IoU of the raw (and refined) predictions, and
overlays of a few validation images (raw, refined, ground truth, predictions mapped by match.json).
"""

from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from tools.atomic_io import atomic_write_text
from tools.data.imagenet_s import ImageNetS
from tools.data.images import load_rgb_image
from tools.data.label_codec import read_label_png
from tools.report import plots
from tools.run_layout import RunLayout

TRAINING_STAGES = ("pretrain", "cluster/pixel_attention", "finetune")
OVERLAY_IMAGES = 4


def _img(png: bytes | None, alt: str) -> str:
    if png is None:
        return f"<p><em>{html.escape(alt)}: nothing logged yet.</em></p>"
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _table(rows: list[tuple[str, Any]]) -> str:
    cells = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in rows
    )
    return f"<table>{cells}</table>"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


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
    rows = [(k.removeprefix("epoch_"), v) for k, v in last.items() if k.startswith("epoch_")]
    done = (layout.root / stage.split("/")[0] / ".done").is_file()
    header = f"<h3>{html.escape(stage)} ({'done' if done else 'not finished'})</h3>"
    if not records:
        return header + "<p><em>not run yet</em></p>"
    epochs = f"<p>epochs logged: {len(summaries)}; last epoch means:</p>"
    return header + epochs + _table(rows) + _img(plots.loss_curves(stage, records), f"{stage} curves")


def _score(pred_dir: Path, data: ImageNetS, workers: int):
    from tools.evaluation import load_match_file, score_predictions

    match_path = pred_dir / "match.json"
    if not match_path.is_file():
        return None
    match = load_match_file(match_path)
    return score_predictions(pred_dir, data, "validation", match=match, workers=workers, progress=False)


def _mapped(labels: np.ndarray, match: dict[int, int]) -> np.ndarray:
    lut = np.zeros(max([*match, int(labels.max(initial=0))]) + 1, dtype=np.int64)
    for pred, gt in match.items():
        lut[pred] = gt
    return lut[labels]


def _overlay_rows(data: ImageNetS, prediction_dirs: dict[str, Path], scores: dict) -> list:
    samples = data.samples("validation")
    step = max(1, len(samples) // OVERLAY_IMAGES)
    rows = []
    for sample in samples[::step][:OVERLAY_IMAGES]:
        maps: dict[str, np.ndarray] = {}
        for label, folder in prediction_dirs.items():
            path = folder / sample.png_name()
            if path.is_file() and scores.get(label) is not None:
                maps[label] = _mapped(read_label_png(path), scores[label].match)
        mask = data.mask_path(sample)
        if mask.is_file():
            maps["ground truth"] = read_label_png(mask)
        if maps:
            rows.append((sample.key, np.asarray(load_rgb_image(sample.image_path)), maps))
    return rows


def write_run_report(
    run_dir: str | os.PathLike[str], data_root: str | os.PathLike[str], workers: int = 0
) -> Path:
    """Write ``RUN/report.html`` from whatever the run holds so far; returns its path."""
    layout = RunLayout.at(run_dir)
    data = ImageNetS(data_root)
    parts = [f"<h1>luss run report: {html.escape(str(layout.root))}</h1>"]

    config = layout.config_file.read_text() if layout.config_file.is_file() else "(no config.yaml yet)"
    parts.append(f"<h2>Resolved config</h2><pre>{html.escape(config)}</pre>")

    parts.append("<h2>Training stages</h2>")
    parts.extend(_stage_section(layout, stage) for stage in TRAINING_STAGES)

    report_path = layout.root / "cluster" / "report.json"
    if report_path.is_file():
        report = json.loads(report_path.read_text())
        keys = ("num_clusters", "num_train", "nmi", "cluster_accuracy", "threshold", "threshold_source")
        rows = [(k, report.get(k)) for k in keys]
        rows += [("pseudo-label validation mIoU", report.get("validation_miou"))]
        rows += [("validation foreground fraction", report.get("validation_foreground_fraction"))]
        curve = plots.threshold_curve(report.get("curve", []), report.get("threshold"))
        parts.append(
            "<h2>Clustering and threshold sweep</h2>" + _table(rows) + _img(curve, "threshold sweep")
        )

    prediction_dirs = {"raw": layout.predict_dir("validation"), "refined": layout.refine_dir("validation")}
    scores = {label: _score(folder, data, workers) for label, folder in prediction_dirs.items()}
    scored = {label: s for label, s in scores.items() if s is not None}
    parts.append("<h2>Validation scores</h2>")
    if scored:
        header = "<tr><th></th>" + "".join(f"<th>{html.escape(k)}</th>" for k in scored) + "</tr>"
        body = ""
        for metric in ("miou", "acc", "fmeasure", "mbiou"):
            cells = "".join(f"<td>{_fmt(getattr(s, metric))}</td>" for s in scored.values())
            body += f"<tr><th>{metric}</th>{cells}</tr>"
        parts.append(f"<table>{header}{body}</table>")
        names = next(iter(scored.values())).class_names
        series = {label: s.per_class_iou for label, s in scored.items()}
        parts.append("<h3>Per-class IoU</h3>" + _img(plots.per_class_iou(names, series), "per-class IoU"))
        rows = _overlay_rows(data, prediction_dirs, scores)
        if rows:
            overlay = plots.overlays(rows, data.num_classes)
            parts.append(
                "<h3>Validation overlays (predictions mapped by match.json)</h3>" + _img(overlay, "overlays")
            )
    else:
        parts.append(
            "<p><em>no scored validation predictions yet (run luss predict --split validation)</em></p>"
        )

    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:auto}img{max-width:100%}"
        "table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #ccc;padding:2px 8px;"
        "text-align:right}pre{background:#f5f5f5;padding:8px;font-size:12px}"
    )
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>luss report</title><style>{style}</style>"
    )
    page += "</head><body>" + "\n".join(parts) + "</body></html>\n"
    out = layout.root / "report.html"
    atomic_write_text(out, page)
    return out
