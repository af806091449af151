"""``luss pretrain``: Stage 1, self-supervised SwAV + P2P (+ D2S) pretraining on DATA/train."""

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


@click.command(
    "pretrain",
    context_settings={"max_content_width": 110},
    epilog="Multi-GPU: `mpirun -np 4 luss pretrain --preset luss50-pass --data D --run RUN`. Batch sizes are "
    "GLOBAL (Jittor semantics): pretrain.loop.batch_size=64 on 4 ranks means 16 images per rank; it must "
    "divide by the number of ranks. A killed run (Ctrl-C, SIGTERM, a scheduler) saves its position; rerun "
    "with --resume to continue exactly where it stopped. A finished stage (RUN/pretrain/.done) is skipped.",
)
@preset_option
@data_option("ImageNet-S root; only the images of train/<wnid>/ are read (no labels).")
@run_option("Run directory: writes RUN/config.yaml and RUN/pretrain/ (checkpoints, metrics.jsonl, .done).")
@resume_option("Continue RUN/pretrain/checkpoints/latest.pkl (same ranks).")
@click.option(
    "--sam-checkpoint",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="SAM weights (sam_vit_b_01ec64.pth) for model.arch sam_vit_b_adapter; the encoder stays frozen.",
)
@overrides_option("--set pretrain.loop.epochs=5 --set pretrain.crops.sizes=[96,48]")
def pretrain(
    preset: str,
    data: Path,
    run_dir: Path,
    resume: bool,
    sam_checkpoint: Path | None,
    overrides: tuple[str, ...],
) -> None:
    """Stage 1: train the backbone and heads with SwAV swapped prediction (Sinkhorn codes, optional
    queue), P2P pixel alignment on the overlap of the two large crops, and optional deep-to-shallow
    supervision. Writes RUN/pretrain/checkpoints/final.pkl for the next stage.

    \b
    Example (CPU, minutes):
      luss demo-data data/demo
      luss pretrain --preset demo --data data/demo --run runs/demo
    """
    from tools.config.run_config import resolve_run_config
    from tools.run_lock import run_lock
    from tools.stages.pretrain import run_pretrain

    sam = [path_override("model.sam_checkpoint", sam_checkpoint)] if sam_checkpoint is not None else []
    config = resolve_run_config(run_dir, "pretrain", preset, [*overrides, *sam])
    loop = config.pretrain.loop
    echo_err(
        f"pretrain: preset {config.preset}, {config.model.arch}, {loop.epochs} epochs, "
        f"global batch {loop.batch_size}, run {run_dir}"
    )
    with run_lock(run_dir, "pretrain"):
        result = run_pretrain(config, data, run_dir, resume=resume, say=echo_err)
    if not result.completed:
        echo_err(f"pretrain: stopped at iteration {result.iterations}; rerun with --resume.")
        return
    metrics = ", ".join(f"{k}={v:.4f}" for k, v in result.last_metrics.items())
    echo(f"pretrain: done, {result.final_checkpoint} ({metrics})")
