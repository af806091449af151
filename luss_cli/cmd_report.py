"""``luss report``: write the self-contained ``RUN/report.html`` of a run."""

from __future__ import annotations

from pathlib import Path

import click

from luss_cli.options import data_option, run_option, workers_option


@click.command(
    epilog="The page inlines every figure, so it can be mailed or opened offline. It shows what the run "
    "holds so far: run it any time, e.g. while training, or after `make submission` (which calls it)."
)
@run_option(
    "The run folder (RUN/config.yaml, RUN/<stage>/metrics.jsonl, RUN/predict/, RUN/refine/, "
    "RUN/ladder.json).",
    exists=True,
)
@data_option("ImageNet-S root: validation images and their ground truth for the scores and overlays.")
@workers_option("Scoring processes")
def report(run_dir: Path, data: Path, workers: int) -> None:
    """Write RUN/report.html. It opens with the headline: final validation scores (raw and refined),
    the stage ladder (RUN/ladder.json from `make bench-pipeline`, else the ladder this run gives: all
    background, pseudo-labels, + finetune, + refine), cluster accuracy and NMI with and without
    attention, saliency and pseudo-label quality, and a few validation images beside their ground truth
    and predictions. Then per-stage metrics with loss and diagnostic curves, the threshold sweep,
    per-class IoU, and the resolved config, folded.

    \b
    luss report --run runs/demo --data data/demo
    """
    from tools.report import write_run_report
    from tools.run_lock import run_lock

    with run_lock(run_dir, "report"):
        path = write_run_report(run_dir, data, workers=workers)
    click.echo(f"Wrote {path}")
