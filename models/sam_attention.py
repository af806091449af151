"""Helpers of the SAM ViT encoder: window partition, decomposed relative positions, resize matrices.

The bicubic position-embedding resize also serves the DINO ViT (:mod:`models.dino_vit`).

Resizing (the 1-D linear resize of relative-position tables, the 2-D bicubic resize of the absolute
position embedding) is done with constant interpolation matrices built in numpy. They reproduce
PyTorch's ``F.interpolate(..., mode="linear" | "bicubic", align_corners=False)`` exactly (same source
coordinates, cubic coefficient A = -0.75, border indices clamped), so the frozen SAM weights see what
they saw in PyTorch, and the resize stays differentiable for a trainable embedding.
"""

from __future__ import annotations

import math
from functools import lru_cache

import jittor as jt
import numpy as np


@lru_cache(maxsize=64)
def linear_resize_matrix(in_size: int, out_size: int) -> np.ndarray:
    """``[out, in]`` float32 matrix M so that ``M @ v`` is torch's 1-D linear resize (align_corners=False)."""
    m = np.zeros((out_size, in_size), dtype=np.float32)
    scale = in_size / out_size
    for i in range(out_size):
        real = max(scale * (i + 0.5) - 0.5, 0.0)
        i0 = int(real)
        lam = real - i0
        i1 = i0 + 1 if i0 < in_size - 1 else i0
        m[i, i0] += 1.0 - lam
        m[i, i1] += lam
    return m


def _cubic_weights(t: float, a: float = -0.75) -> tuple[float, float, float, float]:
    def near(x: float) -> float:  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x: float) -> float:  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return far(t + 1), near(t), near(1 - t), far(2 - t)


@lru_cache(maxsize=64)
def bicubic_resize_matrix(in_size: int, out_size: int, src_step: float | None = None) -> np.ndarray:
    """``[out, in]`` float32 matrix: one axis of torch's bicubic resize (align_corners=False, A=-0.75).

    ``src_step`` is the distance in input pixels between two output pixels: ``in / out`` when torch is
    given ``size=`` (the default), ``1 / scale_factor`` when it is given ``scale_factor=`` (DINO's
    position-embedding resize passes ``(out + 0.1) / in``, so its sampling points differ slightly).
    """
    if in_size == out_size and src_step is None:
        return np.eye(in_size, dtype=np.float32)
    m = np.zeros((out_size, in_size), dtype=np.float32)
    scale = in_size / out_size if src_step is None else src_step
    for i in range(out_size):
        real = (i + 0.5) * scale - 0.5
        i0 = math.floor(real)
        for offset, w in zip((-1, 0, 1, 2), _cubic_weights(real - i0), strict=False):
            m[i, min(max(i0 + offset, 0), in_size - 1)] += w
    return m


def resize_pos_embed(
    pos_embed: jt.Var, size: tuple[int, int], src_steps: tuple[float, float] | None = None
) -> jt.Var:
    """Bicubically resize ``pos_embed`` ``[1, Gh, Gw, C]`` to ``[1, h, w, C]`` (identity at the same size).

    ``src_steps``: the (row, column) ``src_step`` of :func:`bicubic_resize_matrix`; default ``size=``.
    """
    _, gh, gw, c = pos_embed.shape
    h, w = size
    if (h, w) == (gh, gw) and src_steps is None:
        return pos_embed
    step_h, step_w = src_steps if src_steps is not None else (None, None)
    rows = jt.array(bicubic_resize_matrix(gh, h, step_h))  # [h, Gh]
    cols = jt.array(bicubic_resize_matrix(gw, w, step_w))  # [w, Gw]
    x = jt.matmul(rows, pos_embed.reshape(gh, gw * c))  # [h, Gw*C]
    x = x.reshape(h, gw, c).transpose(0, 2, 1)  # [h, C, Gw]
    x = jt.matmul(x, cols.transpose(1, 0))  # [h, C, w]
    return x.transpose(0, 2, 1).reshape(1, h, w, c)


@lru_cache(maxsize=64)
def rel_pos_gather_matrix(q_size: int, k_size: int, table_len: int) -> np.ndarray:
    """``[q*k, L]`` matrix G with ``(G @ table).reshape(q, k, C)`` equal to SAM's ``get_rel_pos``.

    It folds the linear resize of the ``[L, C]`` table to ``2*max(q, k) - 1`` rows and the gather at
    ``q_i - k_j + (k - 1)`` (scaled when ``q != k``) into one matrix.
    """
    max_dist = int(2 * max(q_size, k_size) - 1)
    if table_len == max_dist:
        resize = np.eye(table_len, dtype=np.float32)
    else:
        resize = linear_resize_matrix(table_len, max_dist)
    q_coords = np.arange(q_size, dtype=np.float32)[:, None] * np.float32(max(k_size / q_size, 1.0))
    k_coords = np.arange(k_size, dtype=np.float32)[None, :] * np.float32(max(q_size / k_size, 1.0))
    rel = (q_coords - k_coords) + np.float32((k_size - 1) * max(q_size / k_size, 1.0))
    return resize[rel.astype(np.int64).reshape(-1)]


def get_rel_pos(q_size: int, k_size: int, rel_pos: jt.Var) -> jt.Var:
    """Relative position embeddings ``[q, k, C]`` for query/key lengths, from a ``[L, C]`` table."""
    gather = jt.array(rel_pos_gather_matrix(q_size, k_size, rel_pos.shape[0]))
    return jt.matmul(gather, rel_pos).reshape(q_size, k_size, rel_pos.shape[1])


def add_decomposed_rel_pos(
    attn: jt.Var,
    q: jt.Var,
    rel_pos_h: jt.Var,
    rel_pos_w: jt.Var,
    q_size: tuple[int, int],
    k_size: tuple[int, int],
) -> jt.Var:
    """MViTv2 decomposed relative positions: ``attn[b, (qh qw), (kh kw)] += <q, Rh> + <q, Rw>``.

    attn: ``[B, qh*qw, kh*kw]``; q: ``[B, qh*qw, C]``; tables ``[Lh, C]``, ``[Lw, C]``.
    """
    q_h, q_w = q_size
    k_h, k_w = k_size
    rh = get_rel_pos(q_h, k_h, rel_pos_h)  # [qh, kh, C]
    rw = get_rel_pos(q_w, k_w, rel_pos_w)  # [qw, kw, C]
    b, _, dim = q.shape
    r_q = q.reshape(b, q_h, q_w, dim)
    # rel_h[b, y, x, k] = sum_c r_q[b, y, x, c] * rh[y, k, c]
    rel_h = jt.matmul(r_q.transpose(1, 0, 2, 3).reshape(q_h, b * q_w, dim), rh.transpose(0, 2, 1))
    rel_h = rel_h.reshape(q_h, b, q_w, k_h).transpose(1, 0, 2, 3)
    # rel_w[b, y, x, k] = sum_c r_q[b, y, x, c] * rw[x, k, c]
    rel_w = jt.matmul(r_q.transpose(2, 0, 1, 3).reshape(q_w, b * q_h, dim), rw.transpose(0, 2, 1))
    rel_w = rel_w.reshape(q_w, b, q_h, k_w).transpose(1, 2, 0, 3)
    attn = attn.reshape(b, q_h, q_w, k_h, k_w) + rel_h.unsqueeze(4) + rel_w.unsqueeze(3)
    return attn.reshape(b, q_h * q_w, k_h * k_w)


def window_partition(x: jt.Var, window_size: int) -> tuple[jt.Var, tuple[int, int]]:
    """``[B, H, W, C]`` -> ``[B * nW, ws, ws, C]`` windows, zero-padding H, W up to multiples of ``ws``.

    Returns the windows and the padded size ``(Hp, Wp)``.
    """
    b, h, w, c = x.shape
    pad_h = (window_size - h % window_size) % window_size
    pad_w = (window_size - w % window_size) % window_size
    if pad_h > 0 or pad_w > 0:
        x = jt.nn.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    hp, wp = h + pad_h, w + pad_w
    x = x.reshape(b, hp // window_size, window_size, wp // window_size, window_size, c)
    windows = x.transpose(0, 1, 3, 2, 4, 5).reshape(-1, window_size, window_size, c)
    return windows, (hp, wp)


def window_unpartition(
    windows: jt.Var, window_size: int, pad_hw: tuple[int, int], hw: tuple[int, int]
) -> jt.Var:
    """Inverse of :func:`window_partition`: ``[B * nW, ws, ws, C]`` -> ``[B, H, W, C]`` (padding dropped)."""
    hp, wp = pad_hw
    h, w = hw
    b = windows.shape[0] // (hp * wp // window_size // window_size)
    x = windows.reshape(b, hp // window_size, wp // window_size, window_size, window_size, -1)
    x = x.transpose(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, -1)
    if hp > h or wp > w:
        x = x[:, :h, :w, :]
    return x
