"""Benchmark the whole demo pipeline: per-stage time and throughput, and the stage ladder.

    .venv/bin/python bench/bench_pipeline.py [--run bench/out/demo-run] [--data data/demo] [--fresh]
        [--seed N | --seeds 1,2,3]

The ladder is the demo's version of SAMPASS's ablation, validation mIoU (and Acc) of: all background
(an all-zero prediction scored by the real scorer), pseudo-labels without saliency (RUN-nosal: RUN's
Stage 1, cluster with cluster.saliency.enabled=false and pixel_attention.saliency_weight=0),
pseudo-labels with saliency (RUN at the chosen t), + finetune with each head (RUN with the preset's
head, RUN-<other head> reusing RUN's pretrain and cluster), + refine (SAM voting: the line appears
once RUN/refine/validation/match.json exists, after `luss refine --run RUN --data D --split
validation --sam-checkpoint sam_vit_b_01ec64.pth`). Then cluster accuracy, NMI and mask quality per
cluster run, and the stage times. The ladder is saved as RUN/ladder.json (`luss report` shows it).

--seed N sets every stage's seed (pretrain, pixel attention, finetune loops and k-means); --seeds runs
the whole ladder per seed in RUN-seed<N> and ends with one row per seed plus the mean and spread.
A finished stage is reused (its time shows '-'); --fresh trains from scratch. Never fails on a number.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table


def _table(title: str, header: list[str], rows: list[list[str]]) -> Table:
    table = Table(title=title)
    for i, column in enumerate(header):
        table.add_column(column, justify="left" if i == 0 or column == "detail" else "right")
    for row in rows:
        table.add_row(*row)
    return table


def _seeds(args: argparse.Namespace) -> list[int | None]:
    if args.seeds:
        return [int(s) for s in args.seeds.split(",") if s.strip()]
    return [args.seed]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("bench/out/demo-run"))
    parser.add_argument("--data", type=Path, default=Path("data/demo"))
    parser.add_argument(
        "--fresh", action="store_true", help="Delete the run folders first and train from scratch."
    )
    parser.add_argument("--seed", type=int, default=None, help="Every stage's seed (default: the preset's).")
    parser.add_argument("--seeds", default="", help="Comma-separated seeds: one whole ladder per seed.")
    args = parser.parse_args()

    from tools.runtime import configure_runtime

    configure_runtime()
    from tools.data.demo import generate_demo_dataset
    from tools.evaluation.all_background import score_all_background
    from tools.report.ladder import ALL_BACKGROUND, score_step
    from tools.report.ladder_rows import LADDER_HEADER, MASK_QUALITY, cluster_rows, ladder_rows, seed_rows
    from tools.stages.ladder import StageClock, ladder_run_folders, measure_ladder

    console = Console(width=None if sys.stdout.isatty() else 140)  # a log file gets whole rows
    if not (args.data / ".complete").is_file():
        generate_demo_dataset(args.data, progress=False)
    seeds = _seeds(args)
    runs = {
        seed: args.run.with_name(f"{args.run.name}-seed{seed}") if args.seeds else args.run for seed in seeds
    }
    if args.fresh:
        for folder in (f for run in runs.values() for f in ladder_run_folders(run)):
            shutil.rmtree(folder, ignore_errors=True)
    floor = score_step(ALL_BACKGROUND, score_all_background(args.data, workers=0))
    ladders = {}
    for seed, run in runs.items():
        clock = StageClock()
        ladder = measure_ladder("demo", args.data, run, seed, floor, clock, say=console.print)
        ladders[ladder.seed] = ladder
        title = f"{run} (seed {ladder.seed})"
        stage_rows = [
            [
                name,
                "-" if seconds is None else f"{seconds:.1f}",
                "-" if not seconds else f"{images / seconds:.1f}",
            ]
            for name, seconds, images in clock.rows
        ]
        console.print(
            _table(f"demo pipeline stages, {title}, CPU", ["stage", "seconds", "img/s"], stage_rows)
        )
        console.print(
            _table(f"demo stage ladder: validation mIoU, {title}", LADDER_HEADER, ladder_rows(ladder))
        )
        console.print(_table("clustering (train images)", *cluster_rows(ladder.clusters)))
        header, rows = cluster_rows(ladder.clusters, MASK_QUALITY)
        if rows:
            title = "measured against the train ground truth (never trained on)"
            console.print(_table(title, header, rows))
        console.print(
            f"ladder saved to {run / 'ladder.json'}; `luss report --run {run} --data {args.data}` shows it"
        )
    if len(ladders) > 1:
        console.print(_table("stage ladder over seeds: validation mIoU", *seed_rows(ladders)))


if __name__ == "__main__":
    main()
