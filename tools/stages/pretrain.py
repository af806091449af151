"""Stage 1, ``luss pretrain``: SwAV swapped prediction + P2P (+ D2S) on multi-crops of ``DATA/train``.

:class:`PretrainTask` is the :class:`tools.engine.trainer.TrainTask` of this stage; :func:`run_pretrain`
writes ``RUN/config.yaml``, trains into ``RUN/pretrain/`` with the shared engine and marks it done.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tools.config.run_config import record_run_config
from tools.config.schema import LussConfig
from tools.data.imagenet_s import ImageNetS
from tools.data.validate import require_usable_dataset
from tools.engine.distributed import World
from tools.engine.trainer import FitResult, StepInfo
from tools.errors import DatasetError
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
    """The Stage-1 network of ``config.model`` (SAM encoder weights loaded when ``sam_checkpoint`` is set)."""
    from tools.networks import build_network, load_network_weights

    net = build_network(config, "pretrain")
    if config.model.sam_checkpoint:
        load_network_weights(net, "sam", config.model.sam_checkpoint)
    return net


class PretrainTask:
    """SwAV (+ queue) + P2P (+ D2S) with prototype normalisation and freezing, for :func:`fit`."""

    name = STAGE

    def __init__(self, config: LussConfig, images: list[Path]):
        from models.losses import PretrainLossWeights, prototype_parameters
        from tools.stages.swav_objective import SwAVObjective

        self.config = config
        self.cfg = config.pretrain
        self.images = images
        self.model = build_pretrain_net(config)
        self.prototypes = prototype_parameters(self.model.named_parameters())
        self.weights = PretrainLossWeights(self.cfg.swav_weight, self.cfg.d2s_weight, self.cfg.p2p_weight)
        self.swav = SwAVObjective(STAGE, self.cfg, self.cfg.crops_for_assign, config.model.feat_dim)
        self.batch_local = 0

    def trainable_parameters(self) -> list:
        return [p for p in self.model.parameters() if not p.is_stop_grad()]

    def build_loader(self, world: World, seed: int):
        from tools.data.multicrop import MultiCropDataset

        spec = multicrop_spec(self.cfg.crops)
        self.batch_local = world.local_batch(self.cfg.loop.batch_size)
        self.swav.bind(world)
        dataset = MultiCropDataset(self.images, spec, self.cfg.grid_size, seed)
        return global_batch_loader(dataset, STAGE, self.cfg.loop, world, seed)

    def set_train_mode(self) -> None:
        self.model.train()  # a frozen SAM encoder puts itself back in eval mode (FeatureAggregator)

    def train_step(self, batch: Any, step: StepInfo) -> tuple[Any, dict[str, Any]]:
        import jittor as jt

        from models.diagnostics import embedding_diagnostics
        from models.losses import combine_pretrain_losses, d2s_loss, normalize_prototypes, p2p_loss

        cfg = self.cfg
        crops, grid_q, grid_k, overlaps = batch
        for weight in self.prototypes:
            normalize_prototypes(weight)
        out = self.model([jt.array(c) for c in crops], jt.array(grid_q), jt.array(grid_k))
        proto = self.model.prototypes.weight
        b = self.batch_local
        codes, swav = self.swav(out.embedding, out.output, proto, b, step.epoch)
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
        return self.swav.state_dict()

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.swav.load_state_dict(state)


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
    record_run_config(layout, config, STAGE)
    return fit_stage(
        layout, STAGE, lambda: PretrainTask(config, images), config, resume, stop_after_iterations, say
    )
