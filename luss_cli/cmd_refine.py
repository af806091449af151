"""``luss refine``: SAM automatic masks + majority vote of the network prediction inside each mask."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from luss_cli.options import data_option, no_score_option, run_option, split_option, workers_option
from tools.refine.generator_config import OUTPUT_MODES, GeneratorConfig
from tools.refine.voting import BACKGROUND_POLICIES, VOTE_MODES

_DEFAULT = GeneratorConfig()

# GeneratorConfig field -> (click type, help). Defaults come from the dataclass (SAM's own).
GENERATOR_OPTIONS: dict[str, tuple[Any, str]] = {
    "points_per_side": (click.IntRange(min=0), "Point grid side (N*N prompts per crop)."),
    "points_per_batch": (click.IntRange(min=1), "Prompts per decoder batch (speed/memory only)."),
    "pred_iou_thresh": (float, "Drop masks whose predicted IoU is below this."),
    "stability_score_thresh": (float, "Drop masks whose stability score is below this."),
    "stability_score_offset": (float, "Logit offset used by the stability score."),
    "box_nms_thresh": (float, "Box IoU of the NMS that removes duplicate masks."),
    "crop_n_layers": (click.IntRange(min=0), "Extra crop layers (layer i has 2**i x 2**i crops)."),
    "crop_nms_thresh": (float, "Box IoU of the NMS across crops."),
    "crop_overlap_ratio": (float, "Crop overlap, as a fraction of the image side."),
    "crop_n_points_downscale_factor": (click.IntRange(min=1), "Points per side shrink by this per layer."),
    "min_mask_region_area": (click.IntRange(min=0), "Remove holes/islands below this area (0 = off)."),
    "output_mode": (click.Choice(OUTPUT_MODES[:2]), "How SAM hands masks over (no effect on results)."),
}


def generator_options(func: Callable) -> Callable:
    """Add one ``--<field>`` option per SamAutomaticMaskGenerator parameter."""
    for name in reversed(list(GENERATOR_OPTIONS)):
        kind, help_text = GENERATOR_OPTIONS[name]
        default = getattr(_DEFAULT, name)
        func = click.option(
            f"--{name.replace('_', '-')}", name, type=kind, default=default, show_default=True, help=help_text
        )(func)
    return click.option(
        "--point-grids",
        type=click.Path(path_type=Path, exists=True, dir_okay=False),
        help="Explicit prompt grids instead of --points-per-side: a .npy [n, 2] (x, y in 0..1) or a .npz "
        "with one such array per crop layer (in key order). Replaces --points-per-side.",
    )(func)


def run_refine_defaults(run_dir: Path):
    """The ``refine`` section of the run's config (``RefineConfig()`` for a run without one)."""
    from tools.config.run_config import read_run_config
    from tools.config.schema import RefineConfig
    from tools.run_layout import RunLayout

    saved = read_run_config(RunLayout.at(run_dir))
    return saved.refine if saved is not None else RefineConfig()


def build_generator_config(values: dict[str, Any], point_grids: Path | None) -> GeneratorConfig:
    import numpy as np

    values = dict(values)
    if values["points_per_side"] == 0 or point_grids is not None:
        values["points_per_side"] = None  # SAM takes exactly one of the two
    if point_grids is not None:
        if point_grids.suffix == ".npz":
            with np.load(point_grids, allow_pickle=False) as data:
                arrays = [data[k] for k in data.files]
        else:
            arrays = [np.load(point_grids, allow_pickle=False)]
        values["point_grids"] = GeneratorConfig.grids_from_arrays(arrays)
    try:
        return GeneratorConfig(**values)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


@click.command(
    "refine",
    context_settings={"max_content_width": 110},
    epilog="Masks are cached in RUN/refine/sam-masks/<split>/: changing --mode or --background re-votes "
    "the split without running SAM. Resumable; shard with `mpirun -np N luss refine ...` or "
    "--rank/--world-size.",
)
@run_option("The run folder: reads RUN/predict/<split>/, writes RUN/refine/<split>/ and the mask cache.")
@data_option("ImageNet-S root (the split's images; on validation also the GT for match.json and the scores).")
@split_option()
@click.option(
    "--sam-checkpoint",
    required=True,
    type=click.Path(path_type=Path, dir_okay=True),
    help="Official SAM weights, e.g. sam_vit_b_01ec64.pth. Only read when a mask is not cached yet.",
)
@click.option(
    "--model-type",
    type=click.Choice(["vit_b", "vit_l", "vit_h"]),
    default=None,
    help="SAM variant of --sam-checkpoint. Default: refine.model_type of the run's config (vit_b).",
)
@click.option(
    "--mode",
    type=click.Choice(VOTE_MODES),
    default=None,
    help="Default: refine.vote_mode of the run's config (original). original: every mask votes on the "
    "unrefined prediction (order-independent; larger masks painted "
    "first). sampass: in place, masks by predicted IoU descending, as SAMPASS test.py.",
)
@click.option(
    "--background",
    "background_policy",
    type=click.Choice(BACKGROUND_POLICIES),
    default=None,
    help="Default: refine.background of the run's config (erase). erase: a mask whose majority is "
    "background becomes background (reference). protect: it never "
    "turns foreground of the raw prediction into background.",
)
@click.option("--revote", is_flag=True, help="Re-vote every image (from cached masks) even if up to date.")
@click.option("--recompute-masks", is_flag=True, help="Ignore the mask cache and run SAM again.")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when available), cpu, cuda:N.")
@click.option("--rank", type=click.IntRange(min=0), help="This process's shard (default: MPI env or 0).")
@click.option("--world-size", type=click.IntRange(min=1), help="Number of shards (default: MPI env or 1).")
@no_score_option
@workers_option("Scoring processes")
@generator_options
def refine(
    run_dir: Path,
    data: Path,
    split: str,
    sam_checkpoint: Path,
    model_type: str | None,
    mode: str | None,
    background_policy: str | None,
    revote: bool,
    recompute_masks: bool,
    device: str,
    rank: int | None,
    world_size: int | None,
    no_score: bool,
    workers: int,
    point_grids: Path | None,
    **generator_values: Any,
) -> None:
    """Refine raw predictions with SAM semantic voting.

    \b
      luss refine --run RUN --data D --split validation --sam-checkpoint sam_vit_b_01ec64.pth
      luss refine --run RUN --data D --split test --sam-checkpoint ... --mode sampass

    For each image of the split, SamAutomaticMaskGenerator (SAM's default parameters unless set below)
    gives masks, and each mask is relabelled with the majority of the network's prediction inside it.
    Reads RUN/predict/<split>/<wnid>/<stem>.png, writes RUN/refine/<split>/<wnid>/<stem>.png and, on
    validation, RUN/refine/validation/match.json and the score table.
    """
    from rich.console import Console

    from tools.data.imagenet_s import ImageNetS
    from tools.engine.distributed import World, env_world
    from tools.refine.generator_config import cache_fingerprint
    from tools.refine.refiner import RefineOptions, refine_split, score_refined_split
    from tools.refine.sam_model import build_sam, make_mask_source, select_device
    from tools.run_layout import RunLayout
    from tools.run_lock import run_lock
    from tools.runtime import format_status

    defaults = run_refine_defaults(run_dir)
    model_type = model_type or defaults.model_type
    mode = mode or defaults.vote_mode
    background_policy = background_policy or defaults.background
    config = build_generator_config(generator_values, point_grids)
    env = env_world()
    world = World(env.rank if rank is None else rank, env.size if world_size is None else world_size)
    if world.rank >= world.size:
        raise click.UsageError(f"--rank {world.rank} must be below --world-size {world.size}")
    layout = RunLayout.at(run_dir)
    dataset = ImageNetS(data)
    fingerprint, params = cache_fingerprint(config, model_type, sam_checkpoint.name)
    console = Console()

    def mask_source_factory():
        target = select_device(device)
        console.print(f"Loading SAM {model_type} from {sam_checkpoint} on {target}")
        return make_mask_source(build_sam(sam_checkpoint, model_type, target), config)

    options = RefineOptions(mode, background_policy, revote=revote, recompute_masks=recompute_masks)
    if world.is_main:
        console.print(format_status(f"refine {split}", select_device(device), world, "1 image"))
    with run_lock(run_dir, f"refine --split {split}", rank=world.rank):
        summary = refine_split(
            dataset, split, layout, options, mask_source_factory, fingerprint, params, world, console=console
        )
        if world.is_main:
            rates = f"vote {summary.vote_ms_per_image:.1f} ms/img"
            if summary.generated:
                rates += f", SAM {summary.sam_seconds_per_image:.2f} s/img"
            console.print(
                f"refine {split}: {summary.voted} voted ({summary.generated} SAM runs, {summary.cache_hits} "
                f"from cache), {summary.skipped} up to date; {rates} (rank 0's shard) -> "
                f"{layout.refine_dir(split)}"
            )
        if split != "validation" or no_score:
            return
        scored = score_refined_split(dataset, split, layout, world, workers, console)
    if scored.score is not None:
        from tools.evaluation import print_score_table

        print_score_table(scored.score, console=console)
        console.print(f"Wrote {scored.match_file}")
