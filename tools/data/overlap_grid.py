"""Sampling grids over the overlap of two crops (spec 3.1 ``get_grid``), for P2P's ``grid_sample``.

Rectangles are ``(left, top, w, h)`` in original-image pixels. A grid is ``[size, size, 2]`` in the
``grid_sample`` layout: ``grid[j, i] = (x_i, y_j)`` with ``x`` along the crop's width, in ``[-1, 1]``
(``-1`` = left edge of the crop, ``+1`` = right edge). Both grids point at the same image locations,
seen from each crop, so ``grid_sample(features_q, grid_q)[.., j, i]`` and
``grid_sample(features_k, grid_k)[.., j, i]`` describe the same pixel.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

OUTSIDE = -2.0  # outside [-1, 1]: grid_sample returns zeros there


def _crop_grid(
    rect: Sequence[float], ox0: float, oy0: float, ow: float, oh: float, flipped: bool, size: int
) -> np.ndarray:
    left, top, w, h = (float(v) for v in rect)
    steps = np.arange(size, dtype=np.float64) / (size - 1)
    xs = (ox0 - left) / w + steps * ow / w
    ys = (oy0 - top) / h + steps * oh / h
    if flipped:
        # The crop was mirrored after cutting, so the crop's own x runs the other way.
        xs = 1.0 - xs
    grid = np.empty((size, size, 2), dtype=np.float32)
    grid[..., 0] = xs[None, :] * 2.0 - 1.0
    grid[..., 1] = ys[:, None] * 2.0 - 1.0
    return grid


def overlap_grid(
    rect_q: Sequence[float],
    rect_k: Sequence[float],
    flip_q: bool,
    flip_k: bool,
    size: int = 7,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """``(grid_q [size, size, 2], grid_k [size, size, 2], overlaps)`` for crops q and k.

    With an overlap ``(ox0, oy0, ow, oh)``, crop q's ``x_i = (ox0 - left_q) / w_q + i * ow / (w_q (size-1))``
    (likewise ``y`` and crop k), mirrored ``x <- 1 - x`` for a flipped crop, then mapped ``2x - 1``.
    Without an overlap (touching edges included) both grids are filled with ``-2`` and ``overlaps`` is
    False.
    """
    if size < 2:
        raise ValueError(f"grid size must be >= 2, got {size}")
    lq, tq, wq, hq = (float(v) for v in rect_q)
    lk, tk, wk, hk = (float(v) for v in rect_k)
    ox0, oy0 = max(lq, lk), max(tq, tk)
    ox1, oy1 = min(lq + wq, lk + wk), min(tq + hq, tk + hk)
    ow, oh = ox1 - ox0, oy1 - oy0
    if ow <= 0 or oh <= 0:
        empty = np.full((size, size, 2), OUTSIDE, dtype=np.float32)
        return empty, empty.copy(), False
    grid_q = _crop_grid(rect_q, ox0, oy0, ow, oh, bool(flip_q), size)
    grid_k = _crop_grid(rect_k, ox0, oy0, ow, oh, bool(flip_k), size)
    return grid_q, grid_k, True
