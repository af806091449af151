"""Stage 3 (``luss finetune``): train the segmenter on the Stage-2 pseudo-labels (spec section 7).

Reads ``RUN/pretrain/checkpoints/final.pkl`` (its ``backbone.*`` weights) and
``RUN/cluster/pseudo-labels/train/<wnid>/<stem>.png`` (or, with ``finetune.labels: train-semi``, the
semi-supervised protocol, ``DATA/train-semi/`` and its ground-truth masks); writes ``RUN/finetune/``
(checkpoints, ``metrics.jsonl``) and ``RUN/finetune/.done``. Loss: cross-entropy over C+1 classes
(background 0 included) with 1000 ignored; labels are nearest-downscaled by ``label_scale`` and the logits
bilinearly resized to the label size. The log reports pixel accuracy against the pseudo-labels.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tools.config.run_config import record_run_config
from tools.config.schema import LussConfig
from tools.data.imagenet_s import ImageNetS
from tools.data.label_codec import IGNORE_ID
from tools.data.train_semi import labelled_train_semi
from tools.data.validate import require_usable_dataset
from tools.engine.trainer import FitResult, StepInfo
from tools.errors import DatasetError
from tools.networks import build_network, load_network_weights
from tools.predict.labels import nearest_resize_labels
from tools.progress import progress_bar
from tools.run_layout import RunLayout
from tools.stages.common import finished_stage, fit_stage, global_batch_loader

STAGE = "finetune"


def downscale_labels(labels: np.ndarray, scale: float) -> np.ndarray:
    """Nearest downscale of ``[B, S, S]`` labels to ``round(S * scale)`` (``F.interpolate`` nearest rule)."""
    if scale == 1.0:
        return labels
    b, h, w = labels.shape
    out_h, out_w = max(1, int(h * scale)), max(1, int(w * scale))
    return np.stack([nearest_resize_labels(labels[i], out_h, out_w) for i in range(b)])


def segmentation_loss(logits, labels: np.ndarray, class_weights: np.ndarray | None = None):
    """``(CE over C+1 classes ignoring 1000, pixel accuracy)`` of ``logits [B, K, h', w']``.

    ``labels``: ``[B, h, w]``; the logits are bilinearly resized to ``(h, w)`` first.
    ``class_weights`` (``[K]``): a weighted mean over the valid pixels, each weighted by its label's
    weight (PyTorch's ``weight=`` rule); ``None``: the plain mean.
    """
    import jittor as jt

    size = tuple(labels.shape[1:])
    if tuple(logits.shape[2:]) != size:
        logits = jt.nn.interpolate(logits, size=size, mode="bilinear", align_corners=False)
    target = jt.array(labels.astype(np.int32))
    valid = labels != IGNORE_ID
    if class_weights is None:
        loss = jt.nn.cross_entropy_loss(logits, target, ignore_index=IGNORE_ID)
    else:
        pixel_weights = np.where(valid, class_weights[np.where(valid, labels, 0)], 0.0).astype(np.float32)
        per_pixel = jt.nn.cross_entropy_loss(logits, target, ignore_index=IGNORE_ID, reduction="none")
        loss = (per_pixel * jt.array(pixel_weights)).sum() / max(float(pixel_weights.sum()), 1e-12)
    predicted = logits.argmax(dim=1)[0].numpy()
    accuracy = float((predicted == labels)[valid].mean()) if valid.any() else 0.0
    return loss, accuracy


class FinetuneTask:
    """:class:`~tools.engine.trainer.TrainTask` of Stage 3."""

    name = STAGE

    def __init__(self, config: LussConfig, dataset, segmenter, class_weights: np.ndarray | None = None):
        self.config = config
        self.cfg = config.finetune
        self.dataset = dataset
        self.model = segmenter
        self.class_weights = class_weights

    def trainable_parameters(self) -> list:
        return self.model.trainable_parameters()

    def build_loader(self, world, seed: int):
        self.dataset.seed = seed
        return global_batch_loader(self.dataset, STAGE, self.cfg.loop, world, seed)

    def set_train_mode(self) -> None:
        self.model.train()

    def train_step(self, batch, step: StepInfo):
        import jittor as jt

        images, labels = batch
        labels = downscale_labels(labels, self.cfg.label_scale)
        logits = self.model(jt.array(images))
        loss, accuracy = segmentation_loss(logits, labels, self.class_weights)
        return loss, {"loss": loss, "pixel_acc": accuracy}

    def skipped_parameters(self, step: StepInfo):
        return ()

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass


LABEL_SOURCES = ("pseudo", "train-semi")


def training_labels(config: LussConfig, dataset: ImageNetS, layout: RunLayout):
    """``(samples, label folder, C)`` Stage 3 trains on: every train image with its Stage-2 pseudo-label
    (fully unsupervised), or the train-semi images with their ground-truth masks (semi-supervised;
    the ids are then classes, so ``C`` is the number of classes)."""
    if config.finetune.labels == "pseudo":
        return dataset.samples("train"), layout.pseudo_label_dir("train"), cluster_count(config, dataset)
    samples, label_dir = labelled_train_semi(
        dataset, "The semi-supervised protocol (finetune.labels=train-semi)"
    )
    return samples, label_dir, dataset.num_classes


def cluster_count(config: LussConfig, dataset: ImageNetS) -> int:
    """``C``: the configured number of clusters, or the number of train classes when it is 0."""
    return config.cluster.num_clusters or dataset.num_classes


def training_class_weights(pairs, alpha: float, say: Callable[[str], None]) -> np.ndarray | None:
    """The cross-entropy's class weights for ``finetune.class_balance = alpha`` (``None`` at 0: PASS's
    plain mean), from the pixel counts of the training label PNGs; the weights are said."""
    from tools.data.class_balance import foreground_balance_weights, label_pixel_counts

    if alpha == 0:
        return None
    paths = [pairs.label_path(s) for s in pairs.samples]
    with progress_bar(f"{STAGE}: class frequencies", len(paths)) as advance:
        counts = label_pixel_counts(paths, pairs.num_classes, advance)
    weights = foreground_balance_weights(counts, alpha)
    shares = counts / max(int(counts.sum()), 1) * 100
    per_id = ", ".join(f"{i}: {share:.1f} % x{weights[i]:.2f}" for i, share in enumerate(shares))
    say(f"{STAGE}: class-balanced cross-entropy (finetune.class_balance={alpha:g}); per id {per_id}")
    return weights


def run_finetune(
    config: LussConfig,
    data_root: str | Path,
    run_dir: str | Path,
    resume: bool = False,
    stop_after_iterations: int | None = None,
    say: Callable[[str], None] = print,
    pretrain_run: str | Path | None = None,
) -> FitResult:
    """Train Stage 3 into ``RUN/finetune/``; a finished stage (``.done``) is skipped at once.

    ``pretrain_run``: take the Stage-1 backbone from that run instead of ``run_dir`` (a semi-supervised
    run sharing the pretraining of an unsupervised one)."""
    from tools.data.pseudo_labels import PseudoLabelDataset
    from tools.engine.trainer import seed_everything

    layout = RunLayout.at(run_dir)
    finished = finished_stage(layout, STAGE, say)
    if finished is not None:
        return finished
    require_usable_dataset(data_root, ["train"], STAGE, say)
    dataset = ImageNetS(data_root)
    if not dataset.has_split("train"):
        raise DatasetError(f"{dataset.split_dir('train')}: no train/ folder; Stage 3 trains on DATA/train.")
    f = config.finetune
    samples, label_dir, num_classes = training_labels(config, dataset, layout)
    pairs = PseudoLabelDataset(
        samples, label_dir, num_classes, crop_size=f.crop_size, min_scale=f.min_scale, seed=f.loop.seed
    )
    record_run_config(layout, config, STAGE)  # validated, before the network is built
    class_weights = training_class_weights(pairs, f.class_balance, say)
    seed_everything(f.loop.seed)  # the head's initial weights are reproducible
    segmenter = build_network(config, "segmenter", num_classes)
    pretrained = RunLayout.at(pretrain_run) if pretrain_run is not None else layout
    load_network_weights(segmenter, "pretrain->segmenter", pretrained.final_checkpoint("pretrain"))
    return fit_stage(
        layout,
        STAGE,
        lambda: FinetuneTask(config, pairs, segmenter, class_weights),
        config,
        resume,
        stop_after_iterations,
        say,
        num_classes=num_classes,
        labels=f.labels,
        class_weights=None if class_weights is None else [round(float(w), 4) for w in class_weights],
    )
