"""Sinkhorn-Knopp equipartition of a batch over prototypes (SwAV ``distributed_sinkhorn``), log domain.

The reference computes ``Q = exp(s / eps)``, which overflows float32 once ``s / eps > 88`` (cosines
over ``eps = 0.05`` reach 20; fp16 or unnormalised scores overflow). Here every normalisation is a
logsumexp with the maximum subtracted first, and that maximum is taken over the global batch (an
all-reduce ``max``), so ``exp`` only ever sees values ``<= 0`` and a sum that contains at least one
``exp(0) = 1``: no overflow, no ``log(0)``, no NaN, whatever the scores.

The reference's first step (divide ``Q`` by its total) is a no-op for the result, because the next
step rescales every prototype row; it is skipped.
"""

from __future__ import annotations

import math

import jittor as jt

from models.losses.collectives import AllReduce, identity_all_reduce
from models.precision import full_precision


def _global_logsumexp_over_batch(log_q: jt.Var, all_reduce: AllReduce) -> jt.Var:
    """``log sum_b exp(log_q[b, k])`` over the batch of every rank: ``[B_local, K] -> [K]``."""
    peak = all_reduce(log_q.max(dim=0), "max")  # [K], the same on every rank
    total = all_reduce(jt.exp(log_q - peak).sum(dim=0), "add")  # >= 1: the peak's own term
    return jt.log(total) + peak


def _logsumexp_over_prototypes(log_q: jt.Var) -> jt.Var:
    """``log sum_k exp(log_q[b, k])`` for each local sample: ``[B_local, K] -> [B_local, 1]``."""
    peak = log_q.max(dim=1, keepdims=True)
    return jt.log(jt.exp(log_q - peak).sum(dim=1, keepdims=True)) + peak


def sinkhorn_knopp(
    scores: jt.Var,
    epsilon: float = 0.05,
    n_iters: int = 3,
    all_reduce: AllReduce | None = None,
) -> jt.Var:
    """Soft codes ``[B_local, K]`` from prototype scores ``[B_local, K]`` (no gradient, float32).

    Same maths as spec 3.3: each of ``n_iters`` rounds first gives every prototype mass ``1/K`` over the
    global batch (sums all-reduced across ranks), then every sample mass ``1/B_tot``; the result is
    scaled by ``B_tot`` so that **each row sums to 1**. Column sums over the global batch approach
    ``B_tot / K`` as ``n_iters`` grows (3 rounds give them approximately).

    ``all_reduce(var, op)`` with ``op`` in ``{"add", "max"}`` reduces over ranks; ``None`` = one process.
    ``B_tot`` is all-reduced too, so ranks may hold different batch sizes.
    """
    if n_iters < 1:
        raise ValueError(f"n_iters must be >= 1 (rows only sum to 1 after a round), got {n_iters}")
    if scores.ndim != 2:
        raise ValueError(f"scores must be [B, K], got shape {tuple(scores.shape)}")
    all_reduce = all_reduce or identity_all_reduce
    with full_precision():  # float32 also under AMP: fp16 would round the log-domain sums away
        return _sinkhorn_float32(scores, epsilon, n_iters, all_reduce)


def _sinkhorn_float32(scores: jt.Var, epsilon: float, n_iters: int, all_reduce: AllReduce) -> jt.Var:
    # Detached input, no ``jt.no_grad()``: that flag is process-global and not safe across threads.
    log_q = scores.detach().float32() / epsilon
    num_prototypes = int(scores.shape[1])
    batch_total = all_reduce(jt.array([float(scores.shape[0])], dtype="float32"), "add")
    log_batch_total = jt.log(batch_total)
    log_k = math.log(num_prototypes)
    for i in range(n_iters):
        log_q = log_q - _global_logsumexp_over_batch(log_q, all_reduce) - log_k
        if i < n_iters - 1:
            log_q = log_q - _logsumexp_over_prototypes(log_q) - log_batch_total
    # The last sample step times B_tot is a softmax over prototypes: normalising the exponentials
    # directly keeps rows summing to 1 even when log_q is ~1e5 and float32 rounds it to ~1e-2. The
    # exponentials are computed once and stored (``sync``) before the sum and the division read them:
    # left lazy, Jittor fuses ``exp(log_q - peak)`` into the sum's kernel and into the division's
    # kernel separately, each recomputing the whole ~1e5-sized log_q chain with its own rounding, and
    # rows then summed to 0.98 or 4 (K = 513, scores 1e3..1e6) depending on the machine's vector code.
    peak = log_q.max(dim=1, keepdims=True)
    unnormalised = jt.exp(log_q - peak)
    unnormalised.sync()
    codes = unnormalised / unnormalised.sum(dim=1, keepdims=True)
    return codes.stop_grad()
