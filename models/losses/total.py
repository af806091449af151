"""How the Stage-1 terms add up, with every weight explicit.

The reference computed ``(w0 * L_i2i + sum_s w_s * L_d2s,s) / sum(w) + L_p2p`` with ``--weights 1 1``,
so SAMPASS (no shallow stage, still ``sum(w) = 2``) trained on ``0.5 * L_i2i + L_p2p`` by accident
(spec 13.3 item 7). Here the weights are plain multipliers, no hidden division:

``L = swav * L_i2i + d2s * sum_s L_d2s,s + p2p * L_p2p``.

To reproduce the references: PASS/TBD (``shallow = [3]``) ``swav = 0.5, d2s = 0.5, p2p = 1``; SAMPASS
``swav = 0.5, p2p = 1``. A clean equal weighting is ``swav = 1, p2p = 1``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import jittor as jt


@dataclass(frozen=True)
class PretrainLossWeights:
    """Multipliers of the Stage-1 terms (config ``swav_weight``, ``d2s_weight``, ``p2p_weight``)."""

    swav: float = 1.0
    d2s: float = 1.0
    p2p: float = 1.0


def combine_pretrain_losses(
    swav: jt.Var,
    p2p: jt.Var,
    d2s: Mapping[int, jt.Var] | None,
    weights: PretrainLossWeights,
) -> jt.Var:
    """``weights.swav * swav + weights.d2s * sum(d2s.values()) + weights.p2p * p2p`` (scalar)."""
    total = weights.swav * swav + weights.p2p * p2p
    for loss in (d2s or {}).values():
        total = total + weights.d2s * loss
    return total
