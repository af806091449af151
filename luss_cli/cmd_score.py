"""``luss score``: the official ImageNet-S evaluator (mIoU, Acc, F-measure, mBIoU, size buckets)."""

from __future__ import annotations

from pathlib import Path

import click

from luss_cli.options import data_option, split_option, workers_option


@click.command(
    "score",
    context_settings={"max_content_width": 110},
    epilog="Every error names the file to fix. Scores are percentages, as the official evaluator prints.",
)
@click.argument("pred", type=click.Path(path_type=Path, exists=True, file_okay=False))
@data_option(
    "ImageNet-S root; only <split>-segmentation/<wnid>/<stem>.png (the GT) is read, plus the class "
    "folders of train/ (or validation/) for the class list."
)
@split_option("Which ground truth to score against (test GT exists only on the server, or in demo data).")
@click.option(
    "--match",
    "match_path",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help='match.json {pred_id: class_id, ..., "0": 0} to apply (a dict lookup, as ImageNet-S '
    "evaluator.py --match). Written by `luss predict --split validation` or by --save-match here. "
    "Without it the image-level Hungarian is recomputed on PRED, as PASS does.",
)
@click.option(
    "--curve", is_flag=True, help="Sweep attention thresholds (needs the .npy maps), best t by mIoU."
)
@click.option("--t-min", default=0.0, show_default=True, type=click.FloatRange(min=0.0), help="Curve start.")
@click.option("--t-max", default=0.8, show_default=True, type=click.FloatRange(min=0.0), help="Curve end.")
@click.option(
    "--t-step",
    default=0.01,
    show_default=True,
    type=click.FloatRange(min=0.0, min_open=True),
    help="Curve step.",
)
@click.option(
    "--threshold",
    type=float,
    help="Zero the pixels whose attention PRED/<wnid>/<stem>.npy is below T (PASS --t, as a fraction).",
)
@click.option("--no-boundary", is_flag=True, help="Skip boundary IoU (mBIoU, BS..BL): about 1.5x faster.")
@workers_option("Scoring processes")
@click.option(
    "--json",
    "json_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write every number (scores, per-class IoU, pixel counts, match, curve) to this JSON file.",
)
@click.option(
    "--save-match",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the match used (the recomputed Hungarian, or the best threshold's) as match.json, "
    "ready for `luss pack --match`.",
)
def score(
    pred: Path,
    data: Path,
    split: str,
    match_path: Path | None,
    curve: bool,
    t_min: float,
    t_max: float,
    t_step: float,
    threshold: float | None,
    no_boundary: bool,
    workers: int,
    json_path: Path | None,
    save_match: Path | None,
) -> None:
    """Score predictions exactly like the official ImageNet-S evaluator.

    \b
      luss score PRED --data D                        # Hungarian recomputed on PRED
      luss score PRED --data D --match match.json     # apply a given match
      luss score PRED --data D --curve --json s.json  # threshold sweep, best t

    \b
    PRED holds one prediction per ground-truth PNG, PRED/<wnid>/<stem>.png: an 8-bit RGB PNG at the
    image's own size, id = R + 256*G, B = 0 (raw cluster ids 1..C, 0 = background), as written by
    `luss predict`. For --threshold/--curve it also holds PRED/<wnid>/<stem>.npy, the float [H, W]
    pixel-attention map. Pixels labelled 1000 (ignore) in the GT are not scored.
    """
    from tools.atomic_io import atomic_write_json
    from tools.evaluation.curve import threshold_curve, threshold_range
    from tools.evaluation.match_file import load_match_file, save_match_file
    from tools.evaluation.report import print_curve_table, print_score_table
    from tools.evaluation.scorer import score_predictions

    if curve and (threshold is not None or match_path is not None):
        raise click.UsageError("--curve picks its own threshold and match; drop --threshold/--match.")
    if curve and no_boundary:
        raise click.UsageError(
            "--curve always scores the best threshold with boundaries; drop --no-boundary."
        )
    if curve:
        try:
            thresholds = threshold_range(t_min, t_max, t_step)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
        result = threshold_curve(pred, data, split, thresholds=thresholds, workers=workers)
        print_curve_table(result)
        match, payload = result.best.match, result.to_dict()
    else:
        given = load_match_file(match_path) if match_path is not None else None
        scored = score_predictions(
            pred, data, split, match=given, workers=workers, boundary=not no_boundary, threshold=threshold
        )
        print_score_table(scored)
        match, payload = scored.match, scored.to_dict()
    if json_path is not None:
        atomic_write_json(json_path, payload)
        click.echo(f"Wrote {json_path}")
    if save_match is not None:
        save_match_file(save_match, match)
        click.echo(f"Wrote {save_match}")
