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


def loss_curves(stage: str, records: list[dict]) -> bytes | None:
    """One panel per logged metric of a training stage, against the global iteration."""
    steps = [r for r in records if "epoch_end" not in r and "iteration" in r]
    keys = sorted({k for r in steps for k, v in r.items() if isinstance(v, int | float)} - _NOT_CURVES)
    if not steps or not keys:
        return None
    columns = min(3, len(keys))
    rows = math.ceil(len(keys) / columns)
    plt, fig = _figure(4.0 * columns, 2.6 * rows)
    for i, key in enumerate(keys, start=1):
        ax = fig.add_subplot(rows, columns, i)
        points = [(r["iteration"], r[key]) for r in steps if key in r]
        ax.plot([p[0] for p in points], [p[1] for p in points], lw=1.2)
        ax.set_title(f"{stage}: {key}", fontsize=9)
        ax.set_xlabel("iteration", fontsize=8)
        ax.tick_params(labelsize=7)
    return _png(plt, fig)


_NOT_CURVES = {"iteration", "epoch", "img_s"}


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


def colourise(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """``[H, W]`` ids -> RGBA, background and ignore (1000) transparent."""
    rng = np.random.default_rng(_PALETTE_SEED)
    palette = np.zeros((max(num_classes, 1) + 1, 4), dtype=np.float32)
    palette[1:, :3] = rng.uniform(0.15, 1.0, size=(len(palette) - 1, 3))
    palette[1:, 3] = 0.55
    ids = np.where((labels >= 0) & (labels <= num_classes), labels, 0)
    return palette[ids]


def overlays(rows: list[tuple[str, np.ndarray, dict[str, np.ndarray]]], num_classes: int) -> bytes:
    """One row per image: the image, then each label map (e.g. raw, refined, GT) drawn over it."""
    columns = 1 + max(len(maps) for _, _, maps in rows)
    plt, fig = _figure(2.4 * columns, 2.2 * len(rows))
    for r, (name, image, maps) in enumerate(rows):
        ax = fig.add_subplot(len(rows), columns, r * columns + 1)
        ax.imshow(image)
        ax.set_title(name, fontsize=7)
        ax.axis("off")
        for c, (title, labels) in enumerate(maps.items(), start=2):
            ax = fig.add_subplot(len(rows), columns, r * columns + c)
            ax.imshow(image)
            ax.imshow(colourise(labels, num_classes))
            ax.set_title(title, fontsize=7)
            ax.axis("off")
    return _png(plt, fig)
