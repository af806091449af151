"""What the training stages share around the engine: the ``.done`` marker, the save-config/fit/mark-done
frame, the global-batch loader and the multi-crop spec of a crop config."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tools.atomic_io import atomic_write_json
from tools.config.loader import config_to_dict, save_config
from tools.config.schema import CropConfig, LoopConfig, LussConfig
from tools.data.augment import ColorJitterSpec
from tools.data.loader import BatchLoader
from tools.data.multicrop import MultiCropSpec
from tools.engine.distributed import World
from tools.engine.trainer import FitResult, TrainTask
from tools.errors import LussError
from tools.run_layout import RunLayout


def finished_stage(layout: RunLayout, stage: str, say: Callable[[str], None]) -> FitResult | None:
    """The recorded result when ``RUN/<stage>/.done`` exists (and says so), else ``None``."""
    marker = layout.done_marker(stage)
    if not marker.is_file():
        return None
    done = json.loads(marker.read_text() or "{}")
    say(f"{stage}: already done ({marker}); skipping. Use a new --run to train again.")
    return FitResult(
        Path(done.get("final_checkpoint", layout.final_checkpoint(stage))),
        int(done.get("iterations", 0)),
        True,
        dict(done.get("last_metrics", {})),
    )


def mark_stage_done(layout: RunLayout, stage: str, result: FitResult, **extra: Any) -> None:
    """Write ``RUN/<stage>/.done`` (atomically, last) recording the final checkpoint and metrics."""
    atomic_write_json(
        layout.done_marker(stage),
        {
            "stage": stage,
            "final_checkpoint": str(result.final_checkpoint),
            **extra,
            "iterations": result.iterations,
            "last_metrics": result.last_metrics,
        },
    )


def fit_stage(
    layout: RunLayout,
    stage: str,
    config: LussConfig,
    make_task: Callable[[], TrainTask],
    loop: LoopConfig,
    resume: bool,
    stop_after_iterations: int | None,
    say: Callable[[str], None] = print,
    **done_extra: Any,
) -> FitResult:
    """Rank 0 writes the resolved config, every rank trains ``make_task()`` with ``loop`` into
    ``RUN/<stage>/``, and rank 0 marks a completed stage done (``done_extra`` goes into ``.done``)."""
    from tools.engine.distributed import jittor_world
    from tools.engine.precision import stage_precision
    from tools.engine.trainer import fit
    from tools.runtime import status_line

    say(f"{status_line(stage, loop.batch_size)}, {stage_precision(loop).note}")
    world = jittor_world()
    if world.is_main:
        save_config(config, layout.config_file)
    task = make_task()
    out_dir = layout.stage_dir(stage)
    result = fit(task, loop, out_dir, resume, config_to_dict(config), stop_after_iterations, say=say)
    if result.completed and world.is_main:
        mark_stage_done(layout, stage, result, **done_extra)
    return result


def global_batch_loader(dataset, stage: str, loop: LoopConfig, world: World, seed: int) -> BatchLoader:
    """This rank's shuffled share of every global batch of ``dataset`` (one full batch at least)."""
    batch_local = world.local_batch(loop.batch_size)
    if len(dataset) < loop.batch_size:
        raise LussError(
            f"{stage}: {len(dataset)} train images give no full global batch of {loop.batch_size}; "
            f"lower --set {stage}.loop.batch_size."
        )
    return BatchLoader(
        dataset,
        batch_local,
        rank=world.rank,
        world_size=world.size,
        shuffle=True,
        seed=seed,
        num_workers=loop.workers,
    )


def multicrop_spec(crops: CropConfig) -> MultiCropSpec:
    """The :class:`MultiCropSpec` of a ``crops`` config section (groups and photometric strengths)."""
    try:
        return MultiCropSpec(
            sizes=tuple(crops.sizes),
            counts=tuple(crops.counts),
            min_scales=tuple(crops.min_scales),
            max_scales=tuple(crops.max_scales),
            jitter=ColorJitterSpec.swav(crops.color_strength),
            grayscale_p=crops.grayscale_p,
            blur_p=crops.blur_p,
        )
    except ValueError as exc:
        raise LussError(f"crops: {exc}") from None
