"""The SwAV objective both SwAV stages train with (Stage 1 and pixel attention, spec 3.3 and 4.2).

One object owns the queue's life (created at ``epoch_queue_starts``, per-rank length, saved with every
checkpoint), the Sinkhorn codes of the assigned crops and the swapped-prediction loss, so the two stages
cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tools.config.schema import PixelAttentionConfig, PretrainConfig
from tools.engine.distributed import World
from tools.errors import LussError


class SwAVObjective:
    """``codes, loss = objective(embedding, output, prototypes_weight, batch_local, epoch)`` for one
    stage's section (``batch_local``: the per-rank batch, rows per crop).

    ``section`` names the config section in errors (``pretrain``, ``pixel_attention``); ``cfg`` gives
    temperature, epsilon, Sinkhorn iterations, queue length and start, and the crop counts.
    """

    def __init__(
        self,
        section: str,
        cfg: PretrainConfig | PixelAttentionConfig,
        crops_for_assign: Sequence[int],
        feat_dim: int,
    ):
        self.section = section
        self.cfg = cfg
        self.crops_for_assign = list(crops_for_assign)
        self.counts = [int(c) for c in cfg.crops.counts]
        self.feat_dim = feat_dim
        self.world: World | None = None
        self.queue = None

    def bind(self, world: World) -> None:
        """The ranks the queue is shared out over (at loader build)."""
        self.world = world

    def _ensure_queue(self, epoch: int, batch_local: int) -> None:
        from models.losses import SwAVQueue

        cfg = self.cfg
        if self.queue is not None or not SwAVQueue.starts_at(epoch, cfg.queue_length, cfg.epoch_queue_starts):
            return
        size = self.world.size if self.world is not None else 1
        length = SwAVQueue.local_length(cfg.queue_length, size, batch_local)
        if length <= 0:
            raise LussError(
                f"{self.section}.queue_length {cfg.queue_length} holds no whole per-rank batch of "
                f"{batch_local} on {size} rank(s); raise it or set it to 0."
            )
        self.queue = SwAVQueue(len(self.crops_for_assign), length, self.feat_dim)

    def __call__(
        self, embedding, output, prototypes_weight, batch_local: int, epoch: int
    ) -> tuple[dict[int, Any], Any]:
        """``(codes {crop: q [B, K]}, swapped-prediction loss)``; shifts the queue once per assigned crop."""
        from models.losses import mpi_all_reduce, swapped_prediction_loss, swav_codes

        cfg, b = self.cfg, batch_local
        self._ensure_queue(epoch, b)
        codes = swav_codes(
            embedding,
            output,
            prototypes_weight,
            b,
            self.crops_for_assign,
            cfg.epsilon,
            cfg.sinkhorn_iters,
            self.queue,
            mpi_all_reduce,
        )
        return codes, swapped_prediction_loss(codes, output, b, self.counts, cfg.temperature)

    def state_dict(self) -> dict[str, Any]:
        return {"queue": None if self.queue is None else self.queue.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        from models.losses import SwAVQueue

        try:
            self.queue = SwAVQueue.restore(state.get("queue"), len(self.crops_for_assign), self.feat_dim)
        except ValueError as exc:
            raise LussError(f"{self.section}: cannot resume the SwAV queue: {exc}") from None
