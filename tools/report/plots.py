"""The report's figures, each returned as PNG bytes (matplotlib, off-screen Agg backend)."""

from __future__ import annotations

import io
import math

import numpy as np

# Distinct colours for label ids 1..C (0 = background stays transparent in overlays).
_PALETTE_SEED = 7


def _figure(width: float, height: float):
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt, plt.figure(figsize=(width, height), dpi=100)


def _png(plt, fig) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


# Logged next to the losses to show whether a stage learns (models/diagnostics.py says what each means).
DIAGNOSTICS = ("emb_spread", "score_spread", "protos_used", "attn_fg", "attn_mean", "attn_sal_iou")
_NOT_CURVES = {"iteration", "epoch", "img_s"}


def _panels(stage: str, series: dict[str, tuple[list, list]], xlabel: str) -> bytes:
    """One small panel per ``key -> (xs, ys)``, three to a row."""
    columns = min(3, len(series))
    rows = math.ceil(len(series) / columns)
    plt, fig = _figure(4.0 * columns, 2.6 * rows)
    for i, (key, (xs, ys)) in enumerate(series.items(), start=1):
        ax = fig.add_subplot(rows, columns, i)
        ax.plot(xs, ys, lw=1.2, marker="o" if len(xs) <= 30 else None, ms=3)
        ax.set_title(f"{stage}: {key}", fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.tick_params(labelsize=7)
    return _png(plt, fig)


def _steps(records: list[dict]) -> list[dict]:
    return [r for r in records if "epoch_end" not in r and "iteration" in r]


def loss_curves(stage: str, records: list[dict]) -> bytes | None:
    """One panel per logged loss (every metric but the diagnostics) against the global iteration."""
    steps = _steps(records)
    numeric = {k for r in steps for k, v in r.items() if isinstance(v, int | float)}
    keys = sorted(numeric - _NOT_CURVES - set(DIAGNOSTICS))
    if not keys:
        return None
    series = {k: ([r["iteration"] for r in steps if k in r], [r[k] for r in steps if k in r]) for k in keys}
    return _panels(stage, series, "iteration")


def diagnostic_series(records: list[dict]) -> tuple[dict[str, tuple[list, list]], str]:
    """``({key: (xs, ys)}, x label)`` of the logged diagnostics: epoch means by epoch once an epoch
    ended with them, else every logged step by iteration; ``{}`` for a run that logged none (older runs).
    """
    epochs = [r for r in records if "epoch_end" in r]
    by_epoch = any(f"epoch_{key}" in r for r in epochs for key in DIAGNOSTICS)
    rows, x, prefix = (epochs, "epoch_end", "epoch_") if by_epoch else (_steps(records), "iteration", "")
    series = {}
    for key in DIAGNOSTICS:
        points = [(r[x], r[prefix + key]) for r in rows if prefix + key in r]
        if points:
            series[key] = ([p[0] for p in points], [p[1] for p in points])
    return series, "epoch" if by_epoch else "iteration"


def diagnostic_curves(stage: str, records: list[dict]) -> bytes | None:
    """One panel per logged diagnostic (``diagnostic_series``); ``None`` when there is none."""
    series, xlabel = diagnostic_series(records)
    return _panels(stage, series, xlabel) if series else None


def threshold_curve(curve: list[dict], chosen: float | None) -> bytes | None:
    """Validation mIoU against the attention threshold t of the cluster sweep."""
    if not curve:
        return None
    plt, fig = _figure(6.0, 3.0)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([c["t"] for c in curve], [c["miou"] for c in curve], lw=1.4)
    if chosen is not None:
        ax.axvline(chosen, color="tab:red", ls="--", lw=1, label=f"chosen t = {chosen:.2f}")
        ax.legend(fontsize=8)
    ax.set_xlabel("threshold t")
    ax.set_ylabel("validation mIoU")
    return _png(plt, fig)


def per_class_iou(names: list[str], series: dict[str, list[float]]) -> bytes:
    """Grouped bars: IoU of every class (background first) for each scored prediction set."""
    plt, fig = _figure(max(6.0, 0.35 * len(names) * max(1, len(series))), 3.2)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / max(1, len(series))
    x = np.arange(len(names))
    for i, (label, values) in enumerate(series.items()):
        ax.bar(x + i * width, values, width, label=label)
    ax.set_xticks(x + 0.4 - width / 2, names, rotation=90, fontsize=7)
    ax.set_ylabel("IoU (%)")
    ax.legend(fontsize=8)
    return _png(plt, fig)


def colourise(labels: np.ndarray, num_classes: int, alpha: float = 0.55) -> np.ndarray:
    """``[H, W]`` ids -> RGBA, background and ignore (1000) transparent; one fixed colour per id."""
    rng = np.random.default_rng(_PALETTE_SEED)
    palette = np.zeros((max(num_classes, 1) + 1, 4), dtype=np.float32)
    palette[1:, :3] = rng.uniform(0.15, 1.0, size=(len(palette) - 1, 3))
    palette[1:, 3] = alpha
    ids = np.where((labels >= 0) & (labels <= num_classes), labels, 0)
    return palette[ids]


def _dimmed(image: np.ndarray) -> np.ndarray:
    """The image as dark grey, so opaque label colours stand out and background stays recognisable."""
    grey = np.asarray(image, dtype=np.float32).mean(axis=2, keepdims=True) / 255.0
    return np.repeat(0.15 + 0.3 * grey, 3, axis=2)


def overlays(rows: list[tuple[str, np.ndarray, dict[str, np.ndarray]]], num_classes: int) -> bytes:
    """One row per image: the image, then each label map (e.g. ground truth, raw, refined) side by side,
    in opaque class colours over the dimmed image (the same colour is the same ground-truth class)."""
    columns = 1 + max(len(maps) for _, _, maps in rows)
    plt, fig = _figure(2.4 * columns, 2.2 * len(rows))
    for r, (name, image, maps) in enumerate(rows):
        ax = fig.add_subplot(len(rows), columns, r * columns + 1)
        ax.imshow(image)
        ax.set_title(name, fontsize=7)
        ax.axis("off")
        for c, (title, labels) in enumerate(maps.items(), start=2):
            ax = fig.add_subplot(len(rows), columns, r * columns + c)
            ax.imshow(_dimmed(image))
            ax.imshow(colourise(labels, num_classes, alpha=1.0))
            ax.set_title(title, fontsize=7)
            ax.axis("off")
    return _png(plt, fig)
