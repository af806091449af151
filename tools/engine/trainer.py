"""The training loop shared by pretrain, pixel attention and finetune. Read it top to bottom.

A stage supplies a :class:`TrainTask` (model, trainable parameters, loader, one step's loss); this
module owns everything else: seeding, the lr schedule, SGD/LARC, checkpoints every epoch (atomic,
rank 0), exact resume (model, optimiser, position, task state such as the SwAV queue), the JSONL
metrics log and the progress bar. Ctrl-C / SIGTERM save the current position before exiting.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from tools.config.schema import LoopConfig
from tools.engine.checkpoint import CheckpointPaths, FrozenWeights, load_checkpoint, save_checkpoint
from tools.engine.distributed import World, jittor_world
from tools.engine.metrics_log import MetricsLog
from tools.engine.optimizer import SGDLarc
from tools.engine.precision import DynamicLossScale, stage_precision, tensor_core_scope
from tools.engine.progress import TrainProgress
from tools.engine.schedule import lr_schedule
from tools.engine.state import frozen_state, load_model_state, model_state
from tools.errors import LussError


@dataclass(frozen=True)
class StepInfo:
    epoch: int
    index: int  # iteration within the epoch
    iteration: int  # global iteration
    lr: float


class Loader(Protocol):
    def __len__(self) -> int: ...
    def set_epoch(self, epoch: int) -> None: ...
    def iter_from(self, start: int) -> Iterator[Any]: ...


class TrainTask(Protocol):
    name: str
    model: Any

    def trainable_parameters(self) -> list: ...
    def build_loader(self, world: World, seed: int) -> Loader: ...
    def set_train_mode(self) -> None: ...
    def train_step(self, batch: Any, step: StepInfo) -> tuple[Any, dict[str, Any]]: ...
    def skipped_parameters(self, step: StepInfo) -> Iterable[int]: ...
    def extra_state(self) -> dict[str, Any]: ...
    def load_extra_state(self, state: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class FitResult:
    final_checkpoint: Path
    iterations: int
    completed: bool
    last_metrics: dict[str, float]


class _Interrupted(Exception):
    pass


def seed_everything(seed: int) -> None:
    import jittor as jt

    np.random.seed(seed % 2**32)
    jt.set_global_seed(seed)


def fit(
    task: TrainTask,
    loop: LoopConfig,
    out_dir: Path,
    resume: bool = False,
    config_dict: dict[str, Any] | None = None,
    stop_after_iterations: int | None = None,
) -> FitResult:
    """Train ``task`` for ``loop.epochs``. ``stop_after_iterations`` stops early as if killed (tests)."""
    from models.precision import autocast, restore_float32_buffers

    world = jittor_world()
    paths = CheckpointPaths(out_dir / "checkpoints")
    log = MetricsLog(out_dir / "metrics.jsonl", enabled=world.is_main)
    frozen = _frozen_weights(task, world)

    # Same seed on every rank: identical initial weights (the optimiser also broadcasts from rank 0).
    seed_everything(loop.seed)
    precision = stage_precision(loop)
    scaler = DynamicLossScale() if precision.amp else None
    optimizer = SGDLarc(task.trainable_parameters(), loop.optim, scaler)
    loader = task.build_loader(world, loop.seed)
    iters_per_epoch = len(loader)
    if iters_per_epoch == 0:
        raise LussError(
            f"{task.name}: an epoch has 0 iterations (fewer images than the global batch "
            f"{loop.batch_size}); lower --set {task.name}.loop.batch_size or add data."
        )
    schedule = lr_schedule(loop.optim, loop.epochs, iters_per_epoch)
    total = loop.epochs * iters_per_epoch

    epoch, index = 0, 0
    if paths.latest.is_file():
        if not resume:
            raise LussError(
                f"{paths.latest} exists: this run already trained {task.name}. Pass --resume to continue "
                "it, or choose a new --run directory."
            )
        epoch, index = _restore(task, optimizer, paths, world, iters_per_epoch)
        log.truncate_after(epoch * iters_per_epoch + index)

    last: dict[str, float] = {}
    completed = False
    previous_handler = _install_sigterm()
    try:
        with (
            tensor_core_scope(precision),
            TrainProgress(task.name, total, epoch * iters_per_epoch + index, world.is_main) as bar,
        ):
            while epoch < loop.epochs:
                loader.set_epoch(epoch)
                task.set_train_mode()
                epoch_sums: dict[str, float] = {}
                epoch_count = 0
                for batch in loader.iter_from(index):
                    it = epoch * iters_per_epoch + index
                    if stop_after_iterations is not None and it >= stop_after_iterations:
                        raise _Interrupted
                    step = StepInfo(epoch, index, it, float(schedule[it]))
                    with autocast(precision.amp):
                        loss, metrics = task.train_step(batch, step)
                    if precision.amp:
                        restore_float32_buffers(task.model)
                    optimizer.step(loss, step.lr, skip=task.skipped_parameters(step))
                    if scaler is not None:
                        metrics = {**metrics, "loss_scale": scaler.scale, "amp_skipped": scaler.skipped_steps}
                    index += 1
                    bar.advance(loop.batch_size)
                    if index % loop.log_every == 0 or index == iters_per_epoch:
                        last = {k: float(v.item() if hasattr(v, "item") else v) for k, v in metrics.items()}
                        img_s = bar.images_per_second()
                        bar.show(epoch, step.lr, last, img_s)
                        log.write({"iteration": it, "epoch": epoch, "lr": step.lr, "img_s": img_s, **last})
                        for k, v in last.items():
                            epoch_sums[k] = epoch_sums.get(k, 0.0) + v
                        epoch_count += 1
                epoch, index = epoch + 1, 0
                summary = {f"epoch_{k}": v / max(epoch_count, 1) for k, v in epoch_sums.items()}
                log.write({"iteration": epoch * iters_per_epoch - 1, "epoch_end": epoch - 1, **summary})
                _save(task, optimizer, paths, world, epoch, 0, iters_per_epoch, config_dict, frozen)
                if epoch % loop.checkpoint_freq == 0 or epoch == loop.epochs:
                    _save_snapshot(task, paths.snapshot(epoch), world, epoch, config_dict, frozen)
                    if world.is_main:
                        paths.prune_snapshots(loop.keep_checkpoints)
        _save_snapshot(task, paths.final, world, epoch, config_dict, frozen)
        completed = True
    except (_Interrupted, KeyboardInterrupt) as exc:
        _save(task, optimizer, paths, world, epoch, index, iters_per_epoch, config_dict, frozen)
        if isinstance(exc, KeyboardInterrupt):
            raise
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
    return FitResult(paths.final, epoch * iters_per_epoch + index, completed, last)


def _install_sigterm():
    def handler(signum, frame):  # a scheduler's kill saves the position like Ctrl-C does
        raise KeyboardInterrupt

    with contextlib.suppress(ValueError):  # not in the main thread
        return signal.signal(signal.SIGTERM, handler)
    return signal.getsignal(signal.SIGTERM)


def _rank_state_path(paths: CheckpointPaths, rank: int) -> Path:
    return paths.directory / f"latest-rank{rank}.pkl"


def _frozen_weights(task, world: World) -> FrozenWeights | None:
    """Rank 0's frozen encoder state (constant during training), or ``None`` when nothing is frozen."""
    state = frozen_state(task.model) if world.is_main else {}
    return FrozenWeights(state) if state else None


def _model_payload(task, paths: CheckpointPaths, frozen: FrozenWeights | None) -> dict[str, Any]:
    """``{"model": ...}`` without the frozen weights, which go once into ``frozen-<digest>.pkl``."""
    model = model_state(task.model)
    if frozen is None:
        return {"model": model}
    model, ref = frozen.split(model, paths.directory)
    return {"model": model, "frozen": ref}


def _save(
    task, optimizer, paths, world: World, epoch: int, index: int, ipe: int, config_dict, frozen
) -> None:
    """Rank 0 writes model + optimiser + position; every rank writes its own task state (queues)."""
    position = {"epoch": epoch, "index": index, "iteration": epoch * ipe + index, "world_size": world.size}
    if not world.is_main:
        save_checkpoint(_rank_state_path(paths, world.rank), {"extra": task.extra_state(), **position})
    if world.is_main:
        payload = {
            "stage": task.name,
            **_model_payload(task, paths, frozen),
            "optimizer": optimizer.state_dict(),
            "extra": task.extra_state(),
            "config": config_dict,
            "saved_at": time.time(),
            **position,
        }
        save_checkpoint(paths.latest, payload)


def _save_snapshot(task, path: Path, world: World, epoch: int, config_dict, frozen) -> None:
    if world.is_main:
        paths = CheckpointPaths(path.parent)
        payload = {"stage": task.name, **_model_payload(task, paths, frozen), "epoch": epoch}
        save_checkpoint(path, {**payload, "config": config_dict})


def _restore(task, optimizer, paths: CheckpointPaths, world: World, ipe: int) -> tuple[int, int]:
    payload = load_checkpoint(paths.latest)
    if payload.get("world_size", 1) != world.size:
        raise LussError(
            f"{paths.latest} was written by {payload.get('world_size')} ranks, this run has {world.size}. "
            f"Resume with mpirun -np {payload.get('world_size')} (the per-rank queues depend on it)."
        )
    load_model_state(task.model, payload["model"], str(paths.latest))
    optimizer.load_state_dict(payload["optimizer"])
    extra = payload["extra"]
    if world.size > 1 and not world.is_main:
        extra = load_checkpoint(_rank_state_path(paths, world.rank))["extra"]
    task.load_extra_state(extra)
    epoch, index = int(payload["epoch"]), int(payload["index"])
    if index >= ipe:  # the data changed size since the save: start the next epoch
        epoch, index = epoch + 1, 0
    return epoch, index
