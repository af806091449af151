"""``luss distance``: the distance-matching protocol (class embeddings from train-semi, cosine matching)."""

from __future__ import annotations

from pathlib import Path

import click

from luss_cli.echo import echo
from luss_cli.options import (
    data_option,
    overwrite_option,
    pretrain_from_option,
    run_option,
    split_option,
    workers_option,
)


@click.command(
    "distance",
    context_settings={"max_content_width": 110, "show_default": True},
    epilog="Resumable: images whose PNG exists are skipped (--overwrite redoes them and the embeddings). "
    "Shard over processes with mpirun -np N luss distance ...",
)
@run_option(
    "Run folder: reads RUN/pretrain/checkpoints/final.pkl (or --pretrain-from's), writes RUN/distance/."
)
@data_option("ImageNet-S root with train-semi/ + train-semi-segmentation/ and the split to predict.")
@split_option()
@pretrain_from_option("Take the Stage-1 backbone from this run instead of RUN.")
@click.option(
    "--knn",
    "k",
    default=0,
    type=click.IntRange(min=0),
    help="0: nearest class embedding (mean of the mask means). K > 0: PASS's weighted K-NN over the "
    "train-semi instances (PASS uses 10).",
)
@click.option(
    "--temperature", "t", default=0.07, type=click.FloatRange(min=0.0, min_open=True), help="K-NN T."
)
@click.option(
    "--preset",
    default=None,
    help="Config (backbone, resizing) of a NEW run; default: RUN/config.yaml (or --pretrain-from's).",
)
@overwrite_option("Recompute the embeddings and every prediction.")
@workers_option("Scoring processes")
def distance(
    run_dir: Path,
    data: Path,
    split: str,
    pretrain_from: Path | None,
    k: int,
    t: float,
    preset: str | None,
    overwrite: bool,
    workers: int,
) -> None:
    """Predict a split under the ImageNet-S distance-matching protocol (PASS distance_matching/).

    \b
      luss distance --run RUN --data D --split validation    # PNGs + identity match.json + scores
      luss distance --run RUN --data D --split test
      luss pack RUN/distance/test --data D --protocol distance --out submissions/distance.zip

    Only the self-supervised Stage-1 backbone is used (no clustering, no fine-tuning). Class
    embeddings: for each train-semi image, the mean backbone feature (stride upsampled x4) inside
    each label of its ground-truth mask (background included); per class the mean of those,
    normalised, cached in RUN/distance/embeddings.npz. Each pixel takes the class with the highest
    cosine similarity. Predictions are class ids: RUN/distance/<split>/<wnid>/<stem>.png, with
    protocol.json (for `luss pack --protocol distance`) and, on validation, the identity match.json
    and the score table (`luss score RUN/distance/validation --data D --match
    RUN/distance/validation/match.json` recomputes it).
    """
    from rich.console import Console

    from tools.config.run_config import resolve_run_config
    from tools.evaluation import print_score_table
    from tools.stages.distance import DistanceOptions, run_distance

    config = resolve_run_config(run_dir, "distance", preset, (), base_run=pretrain_from)
    outcome = run_distance(
        config, data, run_dir, split, DistanceOptions(k, t), pretrain_from, overwrite, workers, say=echo
    )
    if outcome.score is not None:
        print_score_table(outcome.score, console=Console())
        echo(f"Wrote {outcome.match_file}")
