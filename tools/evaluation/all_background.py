"""The floor of every ladder: the score of predicting background (id 0) on every pixel.

Written as real label PNGs at the ground-truth sizes and scored by the real scorer, so the number is
exactly what an all-background submission would get (not a formula that could drift from it).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from tools.data.imagenet_s import ImageNetS
from tools.data.label_codec import write_label_png
from tools.evaluation.scorer import ScoreResult, score_predictions


def write_all_background(data: ImageNetS, split: str, out_dir: Path) -> int:
    """One all-zero label PNG per ground-truth PNG of ``split`` under ``out_dir``; returns the count."""
    written = 0
    for gt in sorted(data.segmentation_dir(split).glob("*/*.png")):
        if gt.name.startswith(".") or gt.parent.name.startswith("."):
            continue  # the scorer skips hidden files too
        with Image.open(gt) as img:
            width, height = img.size
        write_label_png(out_dir / gt.parent.name / gt.name, np.zeros((height, width), dtype=np.int32))
        written += 1
    return written


def score_all_background(
    data_root: str | os.PathLike[str], split: str = "validation", workers: int = 1
) -> ScoreResult:
    """Score an all-background prediction of every ``split`` image (written to a temporary folder)."""
    data = ImageNetS(data_root)
    with tempfile.TemporaryDirectory(prefix="luss-all-background-") as tmp:
        write_all_background(data, split, Path(tmp))
        return score_predictions(tmp, data, split, workers=workers, progress=False)
