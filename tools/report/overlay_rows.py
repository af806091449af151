"""Which validation images the report overlays, and their label maps mapped to ground-truth ids."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tools.data.imagenet_s import ImageNetS
from tools.data.images import load_rgb_image
from tools.data.label_codec import read_label_png

OVERLAY_IMAGES = 4


def mapped(labels: np.ndarray, match: dict[int, int]) -> np.ndarray:
    """Predicted ids -> ground-truth ids through match.json (unmatched ids become background)."""
    lut = np.zeros(max([*match, int(labels.max(initial=0))]) + 1, dtype=np.int64)
    for pred, gt in match.items():
        lut[pred] = gt
    return lut[labels]


def overlay_rows(data: ImageNetS, prediction_dirs: dict[str, Path], scores: dict) -> list:
    """``(key, image, {"ground truth": ..., label: mapped prediction})`` for a few evenly spaced images."""
    samples = data.samples("validation")
    step = max(1, len(samples) // OVERLAY_IMAGES)
    rows = []
    for sample in samples[::step][:OVERLAY_IMAGES]:
        maps: dict[str, np.ndarray] = {}
        mask = data.mask_path(sample)
        if mask.is_file():
            maps["ground truth"] = read_label_png(mask)
        for label, folder in prediction_dirs.items():
            path = folder / sample.png_name()
            if path.is_file() and scores.get(label) is not None:
                maps[label] = mapped(read_label_png(path), scores[label].match)
        if maps:
            rows.append((sample.key, np.asarray(load_rgb_image(sample.image_path)), maps))
    return rows
