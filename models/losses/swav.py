"""SwAV swapped prediction (spec 3.3): codes from Sinkhorn on (queue +) batch scores, then cross-entropy.

Shapes, with ``B`` the per-rank batch, ``N = sum(nmb_crops)`` crops and ``K`` prototypes:
``embedding [N*B (+ extra rows), D]`` (L2-normalised), ``output [N*B (+ extra rows), K]`` (scores
``embedding @ W_proto^T``), rows grouped by crop: crop ``v`` owns rows ``v*B:(v+1)*B``.

Use :func:`swav_loss` when only the SwAV term is needed. When deep-to-shallow supervision needs the
codes too, call :func:`swav_codes` once (it shifts the queue) and then :func:`swapped_prediction_loss`.
"""

from __future__ import annotations

from collections.abc import Sequence

import jittor as jt
import numpy as np

from models.losses.collectives import AllReduce
from models.losses.sinkhorn import sinkhorn_knopp
from models.precision import full_precision


class SwAVQueue:
    """Per-rank FIFO of past embeddings, one ``[length, D]`` block per assigned crop (newest rows first).

    The trainer creates it from epoch ``epoch_queue_starts`` on (see :meth:`starts_at`) and saves
    :meth:`state_dict` with each checkpoint, one file per rank, so a resumed run continues exactly.
    """

    def __init__(self, num_assigned: int, length: int, feat_dim: int):
        if length <= 0:
            raise ValueError(f"queue length must be positive, got {length}")
        self.length = length
        self.feat_dim = feat_dim
        self.rows = [jt.zeros((length, feat_dim), dtype="float32").stop_grad() for _ in range(num_assigned)]
        # Once true, stays true (the reference sets it the first time the last row is non-zero).
        self.in_use = False

    @staticmethod
    def local_length(queue_length_global: int, world_size: int, batch_size_local: int) -> int:
        """Rows per rank: ``queue_length / world_size``, rounded down to a multiple of the per-rank batch.

        The reference rounded with ``batch * world`` applied to a global batch (spec 13.3 item 9); rounding
        to the per-rank batch is what keeps whole batches in the FIFO.
        """
        per_rank = queue_length_global // world_size
        return per_rank - per_rank % batch_size_local

    @staticmethod
    def starts_at(epoch: int, queue_length_global: int, epoch_queue_starts: int) -> bool:
        """Whether a queue should exist during ``epoch``."""
        return queue_length_global > 0 and epoch >= epoch_queue_starts

    def should_use(self, index: int) -> bool:
        """Use the queue once it has been in use, or once block ``index`` is full (last row non-zero)."""
        if not self.in_use and bool((self.rows[index][-1] != 0).any().item()):
            self.in_use = True
        return self.in_use

    def push(self, index: int, embedding: jt.Var) -> None:
        """Shift block ``index`` down by ``len(embedding)`` rows and put ``embedding [B, D]`` on top."""
        b = int(embedding.shape[0])
        if b > self.length:
            raise ValueError(f"batch of {b} rows does not fit a queue of {self.length} rows")
        with full_precision():  # the queue stays float32 under AMP
            fresh = embedding.detach().float32()
            rows = jt.concat([fresh, self.rows[index][: self.length - b]], dim=0)
        self.rows[index] = rows.stop_grad()

    def state_dict(self) -> dict:
        return {"rows": np.stack([r.numpy() for r in self.rows]), "in_use": self.in_use}

    @classmethod
    def restore(cls, saved: dict | None, num_assigned: int, feat_dim: int) -> SwAVQueue | None:
        """The queue a :meth:`state_dict` describes (its length included); ``None`` when none was saved."""
        if saved is None:
            return None
        queue = cls(num_assigned, int(np.shape(saved["rows"])[1]), feat_dim)
        queue.load_state_dict(saved)
        return queue

    def load_state_dict(self, state: dict) -> None:
        rows = np.asarray(state["rows"], dtype=np.float32)
        expected = (len(self.rows), self.length, self.feat_dim)
        if rows.shape != expected:
            raise ValueError(
                f"saved queue has shape {rows.shape}, this run expects {expected} "
                "(queue_length, world size, batch size or crops_for_assign changed since the checkpoint)"
            )
        self.rows = [jt.array(r).stop_grad() for r in rows]
        self.in_use = bool(state["in_use"])


def _num_crops(nmb_crops: int | Sequence[int]) -> int:
    return int(nmb_crops) if isinstance(nmb_crops, int | np.integer) else int(sum(nmb_crops))


def swav_codes(
    embedding: jt.Var,
    output: jt.Var,
    prototypes_weight: jt.Var,
    batch_size_local: int,
    crops_for_assign: Sequence[int],
    epsilon: float,
    sinkhorn_iters: int,
    queue: SwAVQueue | None,
    all_reduce: AllReduce | None = None,
) -> dict[int, jt.Var]:
    """Codes ``{crop c: q [B, K]}`` for every assigned crop (no gradient); shifts ``queue`` once per crop.

    Per crop (spec 3.3): the scores are the detached rows of crop ``c``, preceded by the queue's scores
    ``queue_c @ W^T`` when the queue is in use; the queue is shifted after its scores were taken; the
    codes are the last ``B`` rows of Sinkhorn on all of them.
    """
    b = batch_size_local
    codes: dict[int, jt.Var] = {}
    weight = prototypes_weight.detach()
    for i, c in enumerate(crops_for_assign):
        scores = output[c * b : (c + 1) * b].detach()
        if queue is not None:
            if queue.should_use(i):
                scores = jt.concat([jt.nn.matmul_transpose(queue.rows[i], weight), scores], dim=0)
            queue.push(i, embedding[c * b : (c + 1) * b])
        codes[c] = sinkhorn_knopp(scores, epsilon, sinkhorn_iters, all_reduce)[-b:].stop_grad()
    return codes


def swapped_prediction_loss(
    codes: dict[int, jt.Var],
    output: jt.Var,
    batch_size_local: int,
    nmb_crops: int | Sequence[int],
    temperature: float,
) -> jt.Var:
    """``mean_c 1/(N-1) sum_{v != c} -mean_b sum_k q_c[b,k] log_softmax(output_v[b] / T)_k`` (scalar)."""
    b = batch_size_local
    n = _num_crops(nmb_crops)
    if n < 2:
        raise ValueError("swapped prediction needs at least 2 crops")
    num_k = int(output.shape[1])
    log_p = jt.nn.log_softmax(output[: n * b] / temperature, dim=1).reshape(n, b, num_k)
    loss = 0.0
    for c, q in codes.items():
        # Weight 1/(N-1) on every other crop and 0 on crop c itself: one fused reduction over all views.
        view_weight = np.full((n, 1, 1), 1.0 / (n - 1), dtype=np.float32)
        view_weight[c] = 0.0
        loss = loss - (jt.array(view_weight) * q.unsqueeze(0) * log_p).sum() / b
    return loss / len(codes)


def swav_loss(
    embedding: jt.Var,
    output: jt.Var,
    prototypes_weight: jt.Var,
    batch_size_local: int,
    nmb_crops: int | Sequence[int],
    crops_for_assign: Sequence[int],
    temperature: float,
    epsilon: float,
    sinkhorn_iters: int,
    queue: SwAVQueue | None,
    all_reduce: AllReduce | None = None,
) -> jt.Var:
    """The image-to-image SwAV loss ``L_i2i`` of spec 3.3 (scalar); shifts ``queue`` as a side effect."""
    codes = swav_codes(
        embedding,
        output,
        prototypes_weight,
        batch_size_local,
        crops_for_assign,
        epsilon,
        sinkhorn_iters,
        queue,
        all_reduce,
    )
    return swapped_prediction_loss(codes, output, batch_size_local, nmb_crops, temperature)
