"""Stage 2.1, pixel attention (spec 4): train ``fbg`` + prototypes with SwAV on attention-pooled features.

Backbone and projection head come from Stage 1 and stay frozen. The backbone stays in eval mode (its
input is what its BatchNorm statistics were computed on); the projection head runs in train mode, as in
both references, because its input here (attention-pooled unit-norm features) is on another scale than
in Stage 1 (decisions.md). When MaskCut saliency maps exist (``RUN/cluster/saliency/<wnid>/<stem>.png``) and
``pixel_attention.saliency_weight > 0``, the loss adds ``BCE(attention, saliency)`` (spec 4.3).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from tools.config.schema import LussConfig
from tools.data.imagenet_s import Sample
from tools.data.images import load_rgb_image
from tools.engine.distributed import World
from tools.engine.trainer import StepInfo
from tools.errors import LussError
from tools.predict.preprocess import to_normalized_chw
from tools.stages.common import global_batch_loader, multicrop_spec

STAGE_ONE_ONLY = ("projection_head_pixel.", "predictor_head_pixel.", "shallow.")


def build_pixel_attention_net(config: LussConfig, heads: bool = True):
    """Backbone + ``fbg`` (+ projection head + prototypes when ``heads``) of ``config.model``."""
    from models.pixel_attention_net import PixelAttentionNet

    m = config.model
    kwargs: dict[str, Any] = {}
    if m.arch.startswith("sam_"):
        kwargs = {"out_channels": m.adapter_width, "freeze_encoder": True}
    if heads:
        return PixelAttentionNet(m.arch, m.hidden_mlp, m.feat_dim, m.num_prototypes, **kwargs)
    return PixelAttentionNet(m.arch, 0, 0, 0, **kwargs)


def load_weights(net, checkpoint: Path, drop: tuple[str, ...], may_miss: tuple[str, ...] = ()) -> None:
    """Load ``checkpoint``'s model into ``net``, dropping keys under ``drop`` on purpose.

    Any other mismatch is an error naming the keys; only keys under ``may_miss`` may be absent (Stage 1
    has no ``fbg``, which then keeps its initialisation, spec 4.1).
    """
    from tools.engine.checkpoint import load_checkpoint
    from tools.engine.state import load_model_state

    state = {k: v for k, v in load_checkpoint(checkpoint)["model"].items() if not k.startswith(drop)}
    unexpected = sorted(set(state) - set(net.state_dict()))
    missing = load_model_state(net, state, str(checkpoint), strict=False)
    missing = [k for k in missing if not k.startswith(may_miss)] if may_miss else missing
    if missing or unexpected:
        raise LussError(
            f"{checkpoint} does not fit this model: missing {missing[:5]}, unexpected {unexpected[:5]}. "
            "Was it trained with another --preset?"
        )


def load_stage_one(net, checkpoint: Path) -> None:
    load_weights(net, checkpoint, drop=STAGE_ONE_ONLY, may_miss=("fbg.",))


class SaliencyCropDataset:
    """Multi-crops plus ``(image [3, s, s] normalised, saliency [1, s, s] in [0, 1])`` square-resized."""

    def __init__(self, crops, samples: list[Sample], saliency_dir: Path, size: int):
        self.crops = crops
        self.samples = samples
        self.saliency_dir = saliency_dir
        self.size = size

    def set_epoch(self, epoch: int) -> None:
        self.crops.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        crops = self.crops[index][0]
        sample = self.samples[index]
        s = self.size
        img = to_normalized_chw(load_rgb_image(sample.image_path).resize((s, s), Image.BILINEAR))
        with Image.open(self.saliency_dir / sample.wnid / f"{sample.stem}.png") as sal_img:
            sal = np.asarray(sal_img.convert("L").resize((s, s), Image.BILINEAR), np.float32) / 255.0
        return crops, img, sal[None]


class PixelAttentionTask:
    """SwAV (+ queue) on attention-pooled crops (+ saliency BCE) for :func:`tools.engine.trainer.fit`."""

    name = "pixel_attention"

    def __init__(self, config: LussConfig, samples: list[Sample], stage_one: Path, saliency_dir: Path | None):
        self.config = config
        self.cfg = config.pixel_attention
        self.samples = samples
        self.model = build_pixel_attention_net(config)
        load_stage_one(self.model, stage_one)
        self.counts = [int(c) for c in self.cfg.crops.counts]
        if sum(self.counts) < 2:
            raise LussError("pixel_attention.crops must give at least 2 crops (swapped prediction).")
        self.saliency_dir = saliency_dir if self.cfg.saliency_weight > 0 else None
        self.crops_for_assign = [0, 1]
        self.batch_local = 0
        self.queue = None

    def trainable_parameters(self) -> list:
        return self.model.trainable_parameters()

    def build_loader(self, world: World, seed: int):
        from tools.data.multicrop import MultiCropDataset

        spec = multicrop_spec(self.cfg.crops)
        self.world = world
        self.batch_local = world.local_batch(self.cfg.loop.batch_size)
        dataset: Any = MultiCropDataset([s.image_path for s in self.samples], spec, 7, seed)
        if self.saliency_dir is not None:
            dataset = SaliencyCropDataset(
                dataset, self.samples, self.saliency_dir, self.cfg.saliency_image_size
            )
        return global_batch_loader(dataset, "pixel_attention", self.cfg.loop, world, seed)

    def set_train_mode(self) -> None:
        self.model.train()
        for module in self.model.eval_mode_modules():
            module.eval()

    def _ensure_queue(self, epoch: int) -> None:
        from models.losses import SwAVQueue

        cfg = self.cfg
        if self.queue is not None or not SwAVQueue.starts_at(epoch, cfg.queue_length, cfg.epoch_queue_starts):
            return
        length = SwAVQueue.local_length(cfg.queue_length, self.world.size, self.batch_local)
        if length <= 0:
            raise LussError(f"pixel_attention.queue_length {cfg.queue_length} holds no per-rank batch.")
        self.queue = SwAVQueue(len(self.crops_for_assign), length, self.config.model.feat_dim)

    def train_step(self, batch: Any, step: StepInfo) -> tuple[Any, dict[str, Any]]:
        import jittor as jt
        from jittor import nn

        from models.diagnostics import attention_diagnostics, embedding_diagnostics
        from models.losses import mpi_all_reduce, normalize_prototypes, swapped_prediction_loss, swav_codes

        cfg = self.cfg
        crops = batch[0]
        self._ensure_queue(step.epoch)
        normalize_prototypes(self.model.prototypes.weight)
        out = self.model([jt.array(c) for c in crops])
        b = self.batch_local
        codes = swav_codes(
            out.embedding,
            out.output,
            self.model.prototypes.weight,
            b,
            self.crops_for_assign,
            cfg.epsilon,
            cfg.sinkhorn_iters,
            self.queue,
            mpi_all_reduce,
        )
        swav = swapped_prediction_loss(codes, out.output, b, self.counts, cfg.temperature)
        metrics: dict[str, Any] = {"swav": swav}
        metrics.update(embedding_diagnostics(out.embedding[: 2 * b], out.output[: 2 * b]))
        loss = cfg.swav_weight * swav
        if self.saliency_dir is not None:
            img, sal = jt.array(batch[1]), jt.array(batch[2])
            _, attention = self.model.dense(img)
            attention = nn.interpolate(
                attention, size=tuple(sal.shape[2:]), mode="bilinear", align_corners=False
            )
            a = attention.clamp(1e-6, 1 - 1e-6)
            bce = -(sal * jt.log(a) + (1 - sal) * jt.log(1 - a)).mean()
            loss = loss + cfg.saliency_weight * bce
            metrics["saliency"] = bce
            metrics.update(attention_diagnostics(attention, sal))
        elif out.attention is not None:
            metrics.update(attention_diagnostics(out.attention))
        metrics["loss"] = loss
        return loss, metrics

    def skipped_parameters(self, step: StepInfo):
        return ()

    def extra_state(self) -> dict[str, Any]:
        return {"queue": None if self.queue is None else self.queue.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        from models.losses import SwAVQueue

        saved = state.get("queue")
        self.queue = SwAVQueue.restore(saved, len(self.crops_for_assign), self.config.model.feat_dim)
