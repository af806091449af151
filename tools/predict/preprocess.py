"""Inference preprocessing: aspect-preserving resize (shorter side), ImageNet normalisation."""

from __future__ import annotations

import numpy as np
from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def resize_shorter_side(image: Image.Image, short_side: int) -> Image.Image:
    """Resize so the shorter side is ``short_side`` and the aspect ratio is kept (torchvision rule:
    the long side is ``int(short_side * long / short)``)."""
    w, h = image.size
    if min(w, h) == short_side:
        return image
    size = (short_side, int(short_side * h / w)) if w <= h else (int(short_side * w / h), short_side)
    return image.resize(size, Image.BILINEAR)


def to_normalized_chw(image: Image.Image, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> np.ndarray:
    """RGB PIL image -> float32 ``[3, H, W]`` normalised array."""
    array = np.asarray(image, dtype=np.float32) / 255.0
    array = (array - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(array.transpose(2, 0, 1))
