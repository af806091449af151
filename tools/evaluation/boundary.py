"""Boundary bands of a label map, as the official evaluator extracts them for mBIoU.

The official code (PASS ``src/utils.py::mask_to_boundary``, the Boundary-IoU-API recipe, called per
label by ``EvalDataset.get_boundary_mask``) does, for every label ``v`` present in the image:

* ``d = max(1, int(round(0.03 * sqrt(H^2 + W^2))))``;
* pad the binary mask ``label == v`` with a 1-pixel ring of zeros, erode it ``d`` times with a 3x3
  square (OpenCV's default border never erodes), crop the ring away;
* boundary of ``v`` = mask minus eroded mask.

``d`` iterations of a 3x3 erosion equal one erosion by a ``(2d+1)``-square, and the zero ring means
"outside the image is not ``v``". So a pixel is on the boundary of its own label exactly when its
``(2d+1)``-square window leaves the image or holds another label, i.e. when the window's minimum and
maximum label differ once the outside is padded with a label no pixel has. That is two separable
min/max filters for all labels at once instead of one erosion per label.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

DILATION_RATIO = 0.03


def boundary_width(height: int, width: int, dilation_ratio: float = DILATION_RATIO) -> int:
    """Erosion iterations ``d`` for an image: ``round(ratio * diagonal)``, at least 1.

    Python's ``round`` (half to even) on a float64, like the official ``int(round(...))``.
    """
    return max(1, int(round(dilation_ratio * math.sqrt(height**2 + width**2))))


def boundary_mask(labels: np.ndarray, dilation_ratio: float = DILATION_RATIO) -> np.ndarray:
    """``[H, W]`` non-negative ids -> ``[H, W]`` bool: True on the boundary band of the pixel's own label.

    Computed on the whole map, ignore region (1000) included, as the official evaluator does: a class
    touching an ignore band has a boundary there.
    """
    if labels.ndim != 2:
        raise ValueError(f"expected an [H, W] label map, got shape {labels.shape}")
    height, width = labels.shape
    size = 2 * boundary_width(height, width, dilation_ratio) + 1
    ids = labels.astype(np.int32, copy=False)
    # -1 is no label's id, so a window reaching outside the image always has min != max.
    low = ndimage.minimum_filter(ids, size=size, mode="constant", cval=-1)
    high = ndimage.maximum_filter(ids, size=size, mode="constant", cval=-1)
    return low != high
