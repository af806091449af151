"""Logits at network resolution -> labels at the original image size, honouring ``max_res``.

PASS ``inference.py``: if ``H * W > max_res**2`` the logits are bilinearly upsampled only to an
intermediate size, arg-maxed there, and the labels nearest-upsampled to ``(H, W)`` (memory: C+1
full-size float maps of a huge image would not fit); otherwise bilinear to ``(H, W)`` then argmax.
We scale the intermediate size so its *longer* side is ``max_res`` (orientation-aware, as
ImageNetSegModel does; PASS always set the height).
"""

from __future__ import annotations

import numpy as np


def intermediate_size(height: int, width: int, max_res: int) -> tuple[int, int]:
    """The size logits are upsampled to before the argmax."""
    if height * width <= max_res * max_res:
        return height, width
    scale = max_res / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def nearest_resize_labels(labels: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize with PyTorch's ``mode='nearest'`` index rule ``floor(i * in / out)``."""
    h, w = labels.shape
    rows = np.minimum((np.arange(height) * h) // height, h - 1)
    cols = np.minimum((np.arange(width) * w) // width, w - 1)
    return labels[rows[:, None], cols[None, :]]


def logits_to_labels(logits, height: int, width: int, max_res: int) -> np.ndarray:
    """``logits``: Jittor Var ``[1, K, h, w]`` -> int32 ``[height, width]`` labels in ``0..K-1``."""
    import jittor as jt

    mid_h, mid_w = intermediate_size(height, width, max_res)
    up = jt.nn.interpolate(logits, size=(mid_h, mid_w), mode="bilinear", align_corners=False)
    labels = up.argmax(dim=1)[0][0].numpy().astype(np.int32)
    if (mid_h, mid_w) != (height, width):
        labels = nearest_resize_labels(labels, height, width)
    return labels
