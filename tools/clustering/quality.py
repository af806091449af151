"""How good Stage 2's masks are, measured against ground truth where a dataset has it.

Only the built-in demo has train ground truth (``DATA/train-segmentation/``); these numbers go to the
cluster report and the run report and are **never** used for training. On a dataset without it only
the coverage (fraction of pixels called foreground) is reported.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from tools.data.imagenet_s import TRAIN_GROUND_TRUTH_DIR, Sample
from tools.data.label_codec import IGNORE_ID, read_label_png


def train_ground_truth(data_root: Path, sample: Sample) -> Path:
    return Path(data_root) / TRAIN_GROUND_TRUTH_DIR / sample.wnid / f"{sample.stem}.png"


def foreground_quality(pairs: Iterable[tuple[np.ndarray, np.ndarray | None]]) -> dict[str, float]:
    """``pairs`` of (predicted foreground ``bool [H, W]``, ground-truth labels ``[H, W]`` or None).

    Returns ``coverage`` (mean predicted-foreground fraction), and where ground truth exists
    ``fg_iou`` (mean per-image IoU with the ground-truth foreground, ignore pixels 1000 left out),
    ``gt_coverage`` and ``measured`` (images with ground truth).
    """
    coverage, ious, gt_cov = [], [], []
    for pred, gt in pairs:
        coverage.append(float(pred.mean()))
        if gt is None:
            continue
        if gt.shape != pred.shape:
            raise ValueError(f"mask of shape {pred.shape} against ground truth of shape {gt.shape}")
        valid = gt != IGNORE_ID
        fg = (gt > 0) & valid
        p = pred & valid
        union = int((p | fg).sum())
        gt_cov.append(float(fg.sum() / max(int(valid.sum()), 1)))
        if union:
            ious.append(float((p & fg).sum() / union))
    out: dict[str, float] = {"coverage": float(np.mean(coverage)) if coverage else 0.0}
    if gt_cov:
        out["fg_iou"] = float(np.mean(ious)) if ious else 0.0
        out["gt_coverage"] = float(np.mean(gt_cov))
        out["measured"] = len(gt_cov)
    return out


def _ground_truth(data_root: Path, sample: Sample) -> np.ndarray | None:
    path = train_ground_truth(data_root, sample)
    return read_label_png(path) if path.is_file() else None


def train_foreground(data_root: Path, sample: Sample) -> np.ndarray | None:
    """The ground-truth object of a train image, ``bool [H, W]`` (ignore pixels left out), or None."""
    gt = _ground_truth(data_root, sample)
    return None if gt is None else (gt > 0) & (gt != IGNORE_ID)


def has_train_ground_truth(data_root: Path) -> bool:
    return (Path(data_root) / TRAIN_GROUND_TRUTH_DIR).is_dir()


def saliency_quality(data_root: Path, samples: list[Sample], saliency_dir: Path) -> dict[str, float]:
    """MaskCut maps (``saliency_dir/<wnid>/<stem>.png``, 0/255) against the train ground truth."""

    def pairs():
        for s in samples:
            with Image.open(saliency_dir / s.wnid / f"{s.stem}.png") as img:
                yield np.asarray(img.convert("L")) >= 128, _ground_truth(data_root, s)

    return foreground_quality(pairs())


def pseudo_label_quality(data_root: Path, samples: list[Sample], label_dir: Path) -> dict[str, float]:
    """Train pseudo-labels (label PNGs, 0 = background) against the train ground truth's foreground."""
    return foreground_quality(
        (read_label_png(label_dir / s.wnid / f"{s.stem}.png") > 0, _ground_truth(data_root, s))
        for s in samples
    )
