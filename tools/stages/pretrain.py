"""Stage 1, ``luss pretrain``: SwAV swapped prediction + P2P (+ D2S) on multi-crops of ``DATA/train``.

:class:`PretrainTask` is the :class:`tools.engine.trainer.TrainTask` of this stage; :func:`run_pretrain`
writes ``RUN/config.yaml``, trains into ``RUN/pretrain/`` with the shared engine and marks it done.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tools.config.schema import LussConfig
from tools.data.imagenet_s import ImageNetS
from tools.data.validate import require_usable_dataset
from tools.engine.distributed import World
from tools.engine.trainer import FitResult, StepInfo
from tools.errors import DatasetError, LussError
from tools.run_layout import RunLayout
from tools.stages.common import finished_stage, fit_stage, global_batch_loader, multicrop_spec

STAGE = "pretrain"


def train_images(data_root: str | Path) -> list[Path]:
    """Every image under ``DATA/train/<wnid>/`` (labels are never read: Stage 1 is unsupervised)."""
    dataset = ImageNetS(data_root)
    train_dir = dataset.split_dir("train")
    if not train_dir.is_dir():
        raise DatasetError(f"{train_dir}: no train/ folder; Stage 1 trains on DATA/train/<wnid>/*.JPEG.")
    paths = [s.image_path for s in dataset.samples("train")]
    if not paths:
        raise DatasetError(f"{train_dir}: no images found (expected DATA/train/<wnid>/*.JPEG).")
    return paths


def build_pretrain_net(config: LussConfig):
    """The Stage-1 network of ``config.model`` (SAM weights loaded when ``sam_checkpoint`` is set)."""
    from models.pretrain_net import PretrainNet

    m = config.model
    kwargs: dict[str, Any] = {}
    if m.arch.startswith("sam_"):
        kwargs = {"out_channels": m.adapter_width, "freeze_encoder": m.freeze_encoder}
        if m.arch == "sam_vit_b_adapter" and m.freeze_encoder and not m.sam_checkpoint:
            raise LussError(
                "model.arch sam_vit_b_adapter keeps the SAM encoder frozen, so it needs its weights: "
                "pass --sam-checkpoint sam_vit_b_01ec64.pth (or --set model.freeze_encoder=false)."
            )
    try:
        net = PretrainNet(
            m.arch,
            m.hidden_mlp,
            m.feat_dim,
            m.num_prototypes,
            config.pretrain.shallow_stages,
            **kwargs,
        )
    except ValueError as exc:
        raise LussError(f"model: {exc}") from None
    if m.sam_checkpoint:
        if not m.arch.startswith("sam_"):
            raise LussError(f"--sam-checkpoint needs a SAM architecture, model.arch is {m.arch!r}.")
        from tools.checkpoints.sam_weights import load_sam_encoder_weights

        load_sam_encoder_weights(net.backbone.encoder, m.sam_checkpoint)
    return net


class PretrainTask:
    """SwAV (+ queue) + P2P (+ D2S) with prototype normalisation and freezing, for :func:`fit`."""

    name = STAGE

    def __init__(self, config: LussConfig, images: list[Path]):
        from models.losses import PretrainLossWeights, prototype_parameters

        self.config = config
        self.cfg = config.pretrain
        self.images = images
        self.model = build_pretrain_net(config)
        self.prototypes = prototype_parameters(self.model.named_parameters())
        self.weights = PretrainLossWeights(self.cfg.swav_weight, self.cfg.d2s_weight, self.cfg.p2p_weight)
        self.counts = [int(c) for c in self.cfg.crops.counts]
        if any(c not in (0, 1) for c in self.cfg.crops_for_assign) and self.cfg.shallow_stages:
            raise LussError(
                "pretrain.shallow_stages pairs crops 0 and 1: crops_for_assign must be in [0, 1]."
            )
        if any(not 0 <= c < sum(self.counts) for c in self.cfg.crops_for_assign):
            raise LussError(f"pretrain.crops_for_assign {self.cfg.crops_for_assign} names a missing crop.")
        self.batch_local = 0
        self.queue = None

    def trainable_parameters(self) -> list:
        return [p for p in self.model.parameters() if not p.is_stop_grad()]

    def build_loader(self, world: World, seed: int):
        from tools.data.multicrop import MultiCropDataset

        spec = multicrop_spec(self.cfg.crops)
        self.world = world
        self.batch_local = world.local_batch(self.cfg.loop.batch_size)
        dataset = MultiCropDataset(self.images, spec, self.cfg.grid_size, seed)
        return global_batch_loader(dataset, STAGE, self.cfg.loop, world, seed)

    def set_train_mode(self) -> None:
        self.model.train()  # a frozen SAM encoder puts itself back in eval mode (FeatureAggregator)

    def _ensure_queue(self, epoch: int) -> None:
        from models.losses import SwAVQueue

        cfg = self.cfg
        if self.queue is not None or not SwAVQueue.starts_at(epoch, cfg.queue_length, cfg.epoch_queue_starts):
            return
        length = SwAVQueue.local_length(cfg.queue_length, self.world.size, self.batch_local)
        if length <= 0:
            raise LussError(
                f"pretrain.queue_length {cfg.queue_length} holds no whole per-rank batch of "
                f"{self.batch_local} on {self.world.size} rank(s); raise it or set it to 0."
            )
        self.queue = SwAVQueue(len(cfg.crops_for_assign), length, self.config.model.feat_dim)

    def train_step(self, batch: Any, step: StepInfo) -> tuple[Any, dict[str, Any]]:
        import jittor as jt

        from models.diagnostics import embedding_diagnostics
        from models.losses import (
            combine_pretrain_losses,
            d2s_loss,
            mpi_all_reduce,
            normalize_prototypes,
            p2p_loss,
            swapped_prediction_loss,
            swav_codes,
        )

        cfg = self.cfg
        crops, grid_q, grid_k, overlaps = batch
        self._ensure_queue(step.epoch)
        for weight in self.prototypes:
            normalize_prototypes(weight)
        out = self.model([jt.array(c) for c in crops], jt.array(grid_q), jt.array(grid_k))
        proto = self.model.prototypes.weight
        b = self.batch_local
        codes = swav_codes(
            out.embedding,
            out.output,
            proto,
            b,
            cfg.crops_for_assign,
            cfg.epsilon,
            cfg.sinkhorn_iters,
            self.queue,
            mpi_all_reduce,
        )
        swav = swapped_prediction_loss(codes, out.output, b, self.counts, cfg.temperature)
        p2p = p2p_loss(out.z, out.p, jt.array(overlaps))
        d2s = d2s_loss(codes, out.shallow, proto, b, cfg.temperature) if out.shallow else {}
        loss = combine_pretrain_losses(swav, p2p, d2s, self.weights)
        metrics: dict[str, Any] = {"loss": loss, "swav": swav, "p2p": p2p}
        metrics.update({f"d2s{s}": v for s, v in d2s.items()})
        metrics.update(embedding_diagnostics(out.embedding[: 2 * b], out.output[: 2 * b]))
        return loss, metrics

    def skipped_parameters(self, step: StepInfo):
        from models.losses import frozen_prototype_ids

        return frozen_prototype_ids(self.prototypes, step.iteration, self.cfg.freeze_prototypes_niters)

    def extra_state(self) -> dict[str, Any]:
        return {"queue": None if self.queue is None else self.queue.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        from models.losses import SwAVQueue

        assigned, feat_dim = len(self.cfg.crops_for_assign), self.config.model.feat_dim
        try:
            self.queue = SwAVQueue.restore(state.get("queue"), assigned, feat_dim)
        except ValueError as exc:
            raise LussError(f"pretrain: cannot resume the SwAV queue: {exc}") from None


def run_pretrain(
    config: LussConfig,
    data_root: str | Path,
    run_dir: str | Path,
    resume: bool = False,
    stop_after_iterations: int | None = None,
    say: Callable[[str], None] = print,
) -> FitResult:
    """Train Stage 1 into ``RUN/pretrain/``; a finished stage (``.done``) is skipped at once."""
    layout = RunLayout.at(run_dir)
    finished = finished_stage(layout, STAGE, say)
    if finished is not None:
        return finished
    require_usable_dataset(data_root, ["train"], STAGE, say)
    images = train_images(data_root)
    return fit_stage(
        layout,
        STAGE,
        config,
        lambda: PretrainTask(config, images),
        config.pretrain.loop,
        resume,
        stop_after_iterations,
        say,
    )
