"""``luss cluster``: Stage 2, pixel attention + k-means + pseudo-labels (with an optional saliency step)."""

from __future__ import annotations

from pathlib import Path

import click

from luss_cli.echo import echo, echo_err
from luss_cli.options import (
    data_option,
    overrides_option,
    path_override,
    preset_option,
    resume_option,
    run_option,
)

STEP_CHOICES = ["saliency", "attention", "kmeans", "labels"]


@click.command(
    "cluster",
    context_settings={"max_content_width": 110},
    epilog="Sub-steps run in order and each ends with RUN/cluster/.<step>.done, so a rerun skips what is "
    "finished; delete a step's marker to redo it. RUN/cluster/.done is written once every step is done. "
    "Outputs: RUN/cluster/pixel_attention/ (checkpoints), centroids.npy, assignments-{train,validation}.txt, "
    "report.json (NMI, cluster accuracy, chosen t), validation/<wnid>/<stem>.png+.npy (raw labels and "
    "attention, for `luss score --curve`), pseudo-labels/train/<wnid>/<stem>.png (for `luss finetune`).",
)
@preset_option
@data_option(
    "ImageNet-S root: train/ (images; folder names give the classes only for the reported NMI and "
    "cluster accuracy), validation/ and validation-segmentation/ (for the threshold sweep)."
)
@run_option("Run directory holding RUN/pretrain/checkpoints/final.pkl; writes RUN/cluster/.")
@click.option(
    "--step",
    "steps",
    multiple=True,
    type=click.Choice(STEP_CHOICES),
    help="Run only this sub-step (repeatable). Default: attention, kmeans, labels (saliency first when "
    "cluster.saliency.enabled).",
)
@resume_option("Continue an interrupted pixel-attention training.")
@click.option(
    "--dino-checkpoint",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="DINO ViT weights for the saliency step (official dino_*_pretrain.pth or a DINO training "
    "checkpoint.pth); sets cluster.saliency.features=dino and .dino_checkpoint. Nothing is downloaded.",
)
@overrides_option("--set cluster.nredo=10 --set cluster.t_step=0.05")
def cluster(
    preset: str,
    data: Path,
    run_dir: Path,
    steps: tuple[str, ...],
    resume: bool,
    dino_checkpoint: Path | None,
    overrides: tuple[str, ...],
):
    """Stage 2: train the pixel attention (fbg + prototypes, the Stage-1 network frozen), cluster the
    attention-pooled image embeddings with k-means (K = number of train classes unless cluster.num_clusters
    is set), label validation pixels by their nearest centroid, pick the attention threshold t by a
    validation mIoU sweep, and write the train pseudo-labels with that t.

    \b
    Example (CPU, minutes):
      luss pretrain --preset demo --data data/demo --run runs/demo
      luss cluster --data data/demo --run runs/demo        # the run's config (RUN/config.yaml)
      # MaskCut saliency maps from your own DINO ViT (any checkpoint of facebookresearch/dino):
      luss cluster --data data/demo --run runs/demo --step saliency \\
        --dino-checkpoint dino_deitsmall16_pretrain.pth
    """
    from tools.config.run_config import resolve_run_config
    from tools.run_lock import run_lock
    from tools.stages.cluster import run_cluster

    dino = []
    if dino_checkpoint is not None:
        dino = [
            "cluster.saliency.features=dino",
            path_override("cluster.saliency.dino_checkpoint", dino_checkpoint),
        ]
    config = resolve_run_config(run_dir, "cluster", preset, [*overrides, *dino])
    with run_lock(run_dir, "cluster"):
        report = run_cluster(config, data, run_dir, steps=steps or None, resume=resume, say=echo_err)
    if "cluster_accuracy" in report:
        echo(
            f"cluster: NMI {report['nmi']:.4f}, cluster accuracy {report['cluster_accuracy']:.4f}"
            + (f", t = {report['threshold']:.2f}" if "threshold" in report else "")
        )
