"""D2S, deep-to-shallow supervision (PASS/TBD ``--shallow``), spec 3.3.

For a shallow stage ``s``, the embedding of large crop ``v`` computed from stage ``s`` is scored against
the **detached** prototypes and trained to predict the deep codes ``q_c`` of the other large crop
``c``. Only the shallow head and the backbone up to stage ``s`` receive gradient from this term.

Views are indexed per stage explicitly (a dict keyed by stage), not by the reference's
``2 * (3 - stage)`` offset that assumed ``shallow`` sorted as ``[3, 2, 1]`` (spec 13.3 item 7).
"""

from __future__ import annotations

from collections.abc import Mapping

import jittor as jt


def d2s_loss(
    codes: Mapping[int, jt.Var],
    shallow_embeddings: Mapping[int, jt.Var],
    prototypes_weight: jt.Var,
    batch_size_local: int,
    temperature: float,
) -> dict[int, jt.Var]:
    """Per-stage losses ``{s: L_d2s,s}`` (scalars).

    ``codes``: ``{c: q_c [B, K]}`` for the assigned crops (from :func:`models.losses.swav.swav_codes`),
    ``c`` in ``{0, 1}``. ``shallow_embeddings``: ``{s: e_s [2B, D]}``, L2-normalised embeddings of crops 0
    (rows ``0..B-1``) and 1 (rows ``B..2B-1``) from stage ``s``. ``prototypes_weight``: ``[K, D]``.

    ``L_d2s,s = mean_c -mean_b sum_k q_c[b,k] log_softmax(e_s,v W^T / T)[b,k]`` with ``v = 1 - c``.
    """
    b = batch_size_local
    for c in codes:
        if c not in (0, 1):
            raise ValueError(f"deep-to-shallow pairs the two large crops 0 and 1; got assigned crop {c}")
    weight = prototypes_weight.detach()
    losses: dict[int, jt.Var] = {}
    for stage, emb in shallow_embeddings.items():
        if int(emb.shape[0]) != 2 * b:
            raise ValueError(f"stage {stage}: expected {2 * b} rows (crops 0 and 1), got {emb.shape[0]}")
        log_p = jt.nn.log_softmax(jt.nn.matmul_transpose(emb, weight) / temperature, dim=1)
        loss = 0.0
        for c, q in codes.items():
            v = 1 - c
            loss = loss - (q * log_p[v * b : (v + 1) * b]).sum() / b
        losses[stage] = loss / len(codes)
    return losses
