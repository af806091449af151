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
from tools.networks import build_network, load_network_weights
from tools.predict.preprocess import to_normalized_chw
from tools.stages.common import global_batch_loader, multicrop_spec
from tools.stages.feature_cache import FrozenFeatureCache
from tools.stages.swav_objective import SwAVObjective

CROPS_FOR_ASSIGN = (0, 1)  # codes of the two large crops, as both references


class SaliencyCropDataset:
    """Multi-crops plus ``(image [3, s, s] normalised, saliency [1, s, s] in [0, 1], index)``, square-resized.

    The image is the same every epoch (no augmentation): its frozen backbone features are cached by
    ``index`` (:class:`tools.stages.feature_cache.FrozenFeatureCache`)."""

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
        return crops, img, sal[None], index


class PixelAttentionTask:
    """SwAV (+ queue) on attention-pooled crops (+ saliency BCE) for :func:`tools.engine.trainer.fit`."""

    name = "pixel_attention"

    def __init__(self, config: LussConfig, samples: list[Sample], stage_one: Path, saliency_dir: Path | None):
        self.config = config
        self.cfg = config.pixel_attention
        self.samples = samples
        self.model = build_network(config, "attention")
        load_network_weights(self.model, "pretrain->attention", stage_one)
        self.saliency_dir = saliency_dir if self.cfg.saliency_weight > 0 else None
        self.swav = SwAVObjective(self.name, self.cfg, CROPS_FOR_ASSIGN, config.model.feat_dim)
        self.saliency_features = FrozenFeatureCache(self.cfg.feature_cache_mb)
        self.batch_local = 0

    def trainable_parameters(self) -> list:
        return self.model.trainable_parameters()

    def build_loader(self, world: World, seed: int):
        from tools.data.multicrop import MultiCropDataset

        spec = multicrop_spec(self.cfg.crops)
        self.batch_local = world.local_batch(self.cfg.loop.batch_size)
        self.swav.bind(world)
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

    def train_step(self, batch: Any, step: StepInfo) -> tuple[Any, dict[str, Any]]:
        import jittor as jt

        from models.diagnostics import attention_diagnostics, embedding_diagnostics
        from models.losses import normalize_prototypes, saliency_bce

        cfg = self.cfg
        normalize_prototypes(self.model.prototypes.weight)
        out = self.model([jt.array(c) for c in batch[0]])
        b = self.batch_local
        _, swav = self.swav(out.embedding, out.output, self.model.prototypes.weight, b, step.epoch)
        metrics: dict[str, Any] = {"swav": swav}
        metrics.update(embedding_diagnostics(out.embedding[: 2 * b], out.output[: 2 * b]))
        loss = cfg.swav_weight * swav
        if self.saliency_dir is not None:
            sal = jt.array(batch[2])
            bce, attention = saliency_bce(
                self.model.dense_from_backbone(self._saliency_features(batch))[1], sal
            )
            loss = loss + cfg.saliency_weight * bce
            metrics["saliency"] = bce
            metrics["feature_cache_hit_rate"] = self.saliency_features.summary()["hit_rate"]
            metrics.update(attention_diagnostics(attention, sal))
        elif out.attention is not None:
            metrics.update(attention_diagnostics(out.attention))
        metrics["loss"] = loss
        return loss, metrics

    def _saliency_features(self, batch: Any):
        """Frozen backbone features of the batch's whole images: cached after their first epoch."""
        import jittor as jt

        images = batch[1]

        def compute(positions: np.ndarray) -> np.ndarray:
            return self.model.backbone_features(jt.array(images[positions])).numpy()

        return jt.array(self.saliency_features.features(batch[3], compute))

    def skipped_parameters(self, step: StepInfo):
        return ()

    def extra_state(self) -> dict[str, Any]:
        return self.swav.state_dict()

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.swav.load_state_dict(state)
