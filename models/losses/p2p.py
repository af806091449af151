"""P2P: non-contrastive pixel-to-pixel alignment on the 7x7 overlap grid (SimSiam both ways), spec 3.3.

Unlike the reference, crop pairs whose rectangles do not overlap (their grids sample zeros) are
masked out of the mean instead of diluting it (spec 13.3 item 10).
"""

from __future__ import annotations

import jittor as jt


def _unit(x: jt.Var, eps: float = 1e-8) -> jt.Var:
    """Unit vectors along dim 1. The floor is applied to the squared norm, before ``sqrt``, so a zero
    vector (an invalid pair's sample) gets a finite gradient (0), not ``0 * inf = NaN``."""
    return x / jt.sqrt((x * x).sum(dim=1, keepdims=True).maximum(eps * eps))


def p2p_loss(z: jt.Var, p: jt.Var, valid: jt.Var) -> jt.Var:
    """``-1/2 [cos(p1, sg z2) + cos(p2, sg z1)]`` averaged over grid points and over valid pairs (scalar).

    ``z``, ``p``: ``[2B, C, h, w]``, crop 0 of each pair in rows ``0..B-1`` and crop 1 in ``B..2B-1``.
    ``valid``: ``[B]`` bool or 0/1, whether pair ``b``'s crops overlap. No valid pair: the loss is 0.
    """
    n = int(z.shape[0])
    if n % 2:
        raise ValueError(f"z must stack crop 0 and crop 1 (even batch), got {n} rows")
    b = n // 2
    z = _unit(z.detach())
    p = _unit(p)
    cos_12 = (p[:b] * z[b:]).sum(dim=1)  # [B, h, w]
    cos_21 = (p[b:] * z[:b]).sum(dim=1)
    per_pair = -0.5 * (cos_12 + cos_21).reshape(b, -1).mean(dim=1)  # [B]
    mask = valid.reshape(b).bool()
    # ``ternary`` drops an invalid pair's value and gradient outright (a product would keep 0 * NaN).
    masked = jt.ternary(mask, per_pair, jt.zeros_like(per_pair))
    return masked.sum() / mask.float32().sum().maximum(1.0)
