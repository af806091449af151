"""``luss finetune``: Stage 3, train the segmenter on the Stage-2 pseudo-labels."""

from __future__ import annotations

from pathlib import Path

import click

from luss_cli.echo import echo
from luss_cli.options import (
    data_option,
    overrides_option,
    preset_option,
    pretrain_from_option,
    resume_option,
    run_option,
)


@click.command(
    "finetune",
    context_settings={"max_content_width": 110},
    epilog="Interrupted (Ctrl-C, SIGTERM)? The position is saved; rerun with --resume. A finished stage "
    "(RUN/finetune/.done) is skipped. Multi-GPU: mpirun -np N luss finetune ... (batch sizes are global).",
)
@preset_option
@data_option("ImageNet-S root; trains on DATA/train/<wnid>/*.JPEG.")
@run_option("The run folder holding RUN/pretrain/ and RUN/cluster/pseudo-labels/; writes RUN/finetune/.")
@resume_option("Continue an interrupted finetune from RUN/finetune/checkpoints.")
@click.option(
    "--labels",
    type=click.Choice(["pseudo", "train-semi"]),
    default=None,
    help="pseudo: the Stage-2 pseudo-labels (fully unsupervised); train-semi: the 1 % ground-truth masks "
    "of DATA/train-semi (semi-supervised protocol). Default: finetune.labels of the preset (pseudo).",
)
@pretrain_from_option(
    "Take the Stage-1 backbone from this run's pretrain/ (e.g. a semi run next to an unsupervised one); "
    "a new --run then starts from that run's config."
)
@overrides_option("--set finetune.loop.epochs=2 --set finetune.head=last_layer")
def finetune(
    preset: str,
    data: Path,
    run_dir: Path,
    resume: bool,
    labels: str | None,
    pretrain_from: Path | None,
    overrides: tuple[str, ...],
) -> None:
    """Train the segmenter on the pseudo-labels of `luss cluster` (Stage 3).

    \b
      luss finetune --data D --run RUN                          # the run's config (RUN/config.yaml)
      luss finetune --data D --run RUN --set finetune.freeze_backbone=false   # PASS: tune everything
      luss finetune --data D --run RUN-semi --pretrain-from RUN --labels train-semi   # semi protocol

    \b
    Starts from the backbone of RUN/pretrain/checkpoints/final.pkl and trains on
    RUN/cluster/pseudo-labels/train/<wnid>/<stem>.png (0 = background, 1..C = clusters, 1000 = ignored):
    random resized crops (finetune.crop_size, scale finetune.min_scale..1) and flips, cross-entropy
    over C+1 classes at finetune.label_scale of the crop size. The head is finetune.head:
    progressive (SAMPASS up1/up2, the default) or last_layer (PASS 1x1 conv). With
    finetune.freeze_backbone=true (default) only the head trains and the backbone stays in eval mode.
    finetune.class_balance=ALPHA (0, PASS, by default; the demo 1) weights each foreground class of
    the cross-entropy by (mean frequency / its frequency) ** ALPHA in the training labels, so the rare
    clusters k-means leaves are still predicted; background keeps weight 1. The log shows the loss
    and the pixel accuracy against the pseudo-labels. Next: luss predict.

    With --labels train-semi (the ImageNet-S semi-supervised protocol) it trains on the 10 labelled
    images per class of DATA/train-semi/ and their masks instead; no Stage 2 is needed, the
    predictions are class ids (match.json is the identity) and `luss pack --protocol semi` packs them.
    """
    from tools.config.run_config import resolve_run_config
    from tools.run_lock import run_lock
    from tools.stages.finetune import run_finetune

    label_override = [f"finetune.labels={labels}"] if labels else []
    sets = [*overrides, *label_override]
    config = resolve_run_config(run_dir, "finetune", preset, sets, base_run=pretrain_from)
    with run_lock(run_dir, "finetune"):
        result = run_finetune(config, data, run_dir, resume=resume, say=echo, pretrain_run=pretrain_from)
    if not result.completed:
        echo(f"finetune stopped at iteration {result.iterations}; rerun with --resume to continue.")
        return
    metrics = ", ".join(f"{k}={v:.4f}" for k, v in result.last_metrics.items())
    echo(f"finetune done: {result.final_checkpoint} {metrics}".rstrip())
