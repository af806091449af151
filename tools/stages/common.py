"""What the training stages share around the engine: the fit step of the stage frame and its ``.done``
record, the global-batch loader and the multi-crop spec of a crop config."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tools.config.loader import config_to_dict
from tools.config.schema import CropConfig, LoopConfig, LussConfig
from tools.data.augment import ColorJitterSpec
from tools.data.loader import BatchLoader
from tools.data.multicrop import MultiCropSpec
from tools.engine.distributed import World
from tools.engine.trainer import FitResult, TrainTask
from tools.errors import LussError
from tools.run_layout import RunLayout
from tools.stages.frame import read_marker


def finished_stage(layout: RunLayout, stage: str, say: Callable[[str], None]) -> FitResult | None:
    """The recorded result when ``RUN/<stage>/.done`` exists (and says so), else ``None``."""
    marker = layout.done_marker(stage)
    if not marker.is_file():
        return None
    say(f"{stage}: already done ({marker}); skipping. Use a new --run to train again.")
    return fit_result_of(read_marker(marker), layout.final_checkpoint(stage))


def fit_result_of(done: dict[str, Any], default_checkpoint: Path) -> FitResult:
    """The :class:`FitResult` a done-marker records."""
    return FitResult(
        Path(done.get("final_checkpoint", default_checkpoint)),
        int(done.get("iterations", 0)),
        True,
        dict(done.get("last_metrics", {})),
    )


class FitStep:
    """The body of a training :class:`~tools.stages.frame.StageStep`: trains ``make_task()`` with ``loop``
    into ``out_dir``. It returns the done-marker's content (final checkpoint, iterations, metrics and
    ``done_extra``), or ``None`` when the training stopped before its end; :attr:`result` keeps the
    :class:`FitResult`."""

    def __init__(
        self,
        stage: str,
        out_dir: Path,
        make_task: Callable[[], TrainTask],
        config: LussConfig,
        loop: LoopConfig,
        stop_after_iterations: int | None = None,
        say: Callable[[str], None] = print,
        announce: bool = True,
        **done_extra: Any,
    ):
        self.stage, self.out_dir, self.make_task = stage, out_dir, make_task
        self.announce = announce  # print the device/ranks/precision line first
        self.config, self.loop, self.stop_after_iterations = config, loop, stop_after_iterations
        self.say, self.done_extra = say, done_extra
        self.result: FitResult | None = None

    def __call__(self, resume: bool) -> dict[str, Any] | None:
        from tools.engine.precision import stage_precision
        from tools.engine.trainer import fit
        from tools.runtime import status_line

        loop = self.loop
        if self.announce:
            self.say(f"{status_line(self.stage, loop.batch_size)}, {stage_precision(loop).note}")
        result = fit(
            self.make_task(),
            loop,
            self.out_dir,
            resume,
            config_to_dict(self.config),
            self.stop_after_iterations,
            say=self.say,
        )
        self.result = result
        if not result.completed:
            return None
        return {
            "stage": self.stage,
            "final_checkpoint": str(result.final_checkpoint),
            **self.done_extra,
            "iterations": result.iterations,
            "last_metrics": result.last_metrics,
        }


def fit_stage(
    layout: RunLayout,
    stage: str,
    make_task: Callable[[], TrainTask],
    config: LussConfig,
    resume: bool,
    stop_after_iterations: int | None,
    say: Callable[[str], None] = print,
    **done_extra: Any,
) -> FitResult:
    """A one-step stage in the frame: every rank trains ``make_task()`` with ``<stage>.loop`` into
    ``RUN/<stage>/``; rank 0 writes ``RUN/<stage>/.done`` (``done_extra`` in it) when it completes."""
    from tools.stages.frame import StageStep, run_steps

    loop = getattr(config, stage).loop
    out_dir, marker = layout.stage_dir(stage), layout.done_marker(stage)
    body = FitStep(stage, out_dir, make_task, config, loop, stop_after_iterations, say, **done_extra)
    steps = run_steps(stage, [StageStep("train", body, "all", marker)], resume, say)
    if body.result is None:  # the marker appeared meanwhile: another process finished the stage
        return fit_result_of(steps.info["train"], layout.final_checkpoint(stage))
    return body.result


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
            jitter=ColorJitterSpec.swav(crops.color_strength, hue=crops.hue, saturation=crops.saturation),
            grayscale_p=crops.grayscale_p,
            blur_p=crops.blur_p,
        )
    except ValueError as exc:
        raise LussError(f"crops: {exc}") from None
