"""``luss predict``: Stage 4, one label PNG per image of a split (+ match.json and scores on validation)."""

from __future__ import annotations

from pathlib import Path

import click

from luss_cli.echo import echo
from luss_cli.options import (
    data_option,
    no_score_option,
    overwrite_option,
    run_option,
    split_option,
    workers_option,
)


@click.command(
    "predict",
    context_settings={"max_content_width": 110},
    epilog="Resumable: images whose PNG exists are skipped (--overwrite redoes them). Shard over processes "
    "with mpirun -np N luss predict ...; then rerun once on validation for match.json.",
)
@run_option(
    "The run folder; the network is RUN/finetune/checkpoints/final.pkl (built from its saved config).",
    exists=True,
)
@data_option("ImageNet-S root: DATA/<split>/<wnid>/*.JPEG (and, on validation, the GT for matching/scoring).")
@split_option()
@click.option(
    "--short-side",
    type=click.IntRange(min=16),
    help="Resize the shorter image side to this before the network (aspect kept). Default: "
    "predict.short_side of the run's config (256 in the references).",
)
@click.option(
    "--max-res",
    type=click.IntRange(min=1),
    help="Images with H*W > max_res^2 are arg-maxed at a longer side of max_res, then nearest-upsampled "
    "(memory). Default: predict.max_res (1000, as PASS).",
)
@click.option(
    "--flip-tta/--no-flip-tta",
    default=None,
    help="Average the logits with those of the mirrored image (the references use no TTA). "
    "Default: predict.flip_tta.",
)
@overwrite_option("Predict every image again, even those already written.")
@no_score_option
@workers_option("Scoring processes")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config value (predict.* keys). predict.use_folder_labels=true is refused: it reads "
    "classes from folder names and is NOT fully unsupervised.",
)
def predict(
    run_dir: Path,
    data: Path,
    split: str,
    short_side: int | None,
    max_res: int | None,
    flip_tta: bool | None,
    overwrite: bool,
    no_score: bool,
    workers: int,
    overrides: tuple[str, ...],
) -> None:
    """Predict a split with the fine-tuned segmenter (Stage 4).

    \b
      luss predict --run RUN --data D --split validation     # PNGs + match.json + scores
      luss predict --run RUN --data D --split test           # PNGs for `luss pack`

    \b
    Writes RUN/predict/<split>/<wnid>/<stem>.png: 8-bit RGB at the image's own size, id = R + 256*G
    (raw cluster ids 1..C, 0 = background). On validation it then matches cluster ids to classes with
    the image-level Hungarian on the validation GT (the ImageNet-S fully unsupervised protocol), writes
    RUN/predict/validation/match.json ({pred: class, "0": 0}) and prints the `luss score` table. Folder
    names of validation/test images are never used as labels. Next: luss refine, or luss pack.
    """
    import dataclasses

    from rich.console import Console

    from tools.config.run_config import load_run_config, resolve_run_config
    from tools.evaluation import print_score_table
    from tools.run_lock import run_lock
    from tools.stages.predict import run_predict

    load_run_config(run_dir, "predict")  # a run without a config has no network to predict with
    config = resolve_run_config(run_dir, "predict", None, overrides).predict
    changes = {"short_side": short_side, "max_res": max_res, "flip_tta": flip_tta}
    config = dataclasses.replace(config, **{k: v for k, v in changes.items() if v is not None})
    with run_lock(run_dir, f"predict --split {split}"):
        outcome = run_predict(
            config, data, run_dir, split, overwrite=overwrite, score=not no_score, workers=workers, say=echo
        )
    if outcome.score is not None:
        print_score_table(outcome.score, console=Console())
        echo(f"Wrote {outcome.match_file}")
