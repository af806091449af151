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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from tools.config.schema import LoopConfig
from tools.engine.checkpoint import (
    CheckpointPaths,
    FrozenWeights,
    UnreadableCheckpointError,
    load_checkpoint,
    save_checkpoint,
)
from tools.engine.distributed import World, jittor_world
from tools.engine.epoch_means import EpochMeans
from tools.engine.metrics_log import MetricsLog
from tools.engine.optimizer import SGDLarc
from tools.engine.precision import DynamicLossScale, stage_precision, tensor_core_scope
from tools.engine.progress import TrainProgress
from tools.engine.schedule import lr_schedule
from tools.engine.skipped_images import SkippedImages
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
    say: Callable[[str], None] = print,
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
    partial_epoch: dict[str, Any] | None = None  # the epoch_* sums of a checkpoint saved mid-epoch
    if paths.latest.is_file() or paths.snapshots():
        if not resume:
            raise LussError(
                f"{paths.directory} holds checkpoints: this run already trained {task.name}. Pass --resume "
                "to continue it, or choose a new --run directory."
            )
        epoch, index, partial_epoch = _restore(
            task, optimizer, paths, world, iters_per_epoch, loop, config_dict, say
        )
        log.truncate_after(epoch * iters_per_epoch + index)

    means = EpochMeans(partial_epoch)

    def save(epoch: int, index: int, target: Path | None = None) -> None:
        position = {"epoch": epoch, "index": index, "epoch_metrics": means.state()}
        _save(task, optimizer, paths, world, position, loop, iters_per_epoch, config_dict, frozen, target)

    skipped = SkippedImages(out_dir, world.rank, task.name, loop.max_skipped_images, say)
    drain = getattr(loader, "drain_skipped", list)
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
                for batch in loader.iter_from(index):
                    it = epoch * iters_per_epoch + index
                    skipped.record(drain(), epoch, it)
                    if stop_after_iterations is not None and it >= stop_after_iterations:
                        raise _Interrupted
                    step = StepInfo(epoch, index, it, float(schedule[it]))
                    with autocast(precision.amp):
                        loss, metrics = task.train_step(batch, step)
                    if precision.amp:
                        restore_float32_buffers(task.model)
                    sums = means.add(metrics)  # executed with the update: no extra sync per step
                    optimizer.step(loss, step.lr, skip=task.skipped_parameters(step), outputs=sums)
                    if scaler is not None:
                        amp = {"loss_scale": scaler.scale, "amp_skipped": scaler.skipped_steps}
                        means.add(amp)
                        metrics = {**metrics, **amp}
                    means.commit()
                    index += 1
                    bar.advance(loop.batch_size)
                    if index % loop.log_every == 0 or index == iters_per_epoch:
                        last = {k: float(v.item() if hasattr(v, "item") else v) for k, v in metrics.items()}
                        img_s = bar.images_per_second()
                        bar.show(epoch, step.lr, last, img_s)
                        log.write({"iteration": it, "epoch": epoch, "lr": step.lr, "img_s": img_s, **last})
                epoch, index = epoch + 1, 0
                summary = means.means()
                means = EpochMeans()
                log.write({"iteration": epoch * iters_per_epoch - 1, "epoch_end": epoch - 1, **summary})
                # The snapshot before latest.pkl: a kill between the two then redoes the epoch and writes
                # the snapshot again, where the other order would leave the run without it.
                if epoch % loop.checkpoint_freq == 0 or epoch == loop.epochs:
                    save(epoch, 0, paths.snapshot(epoch))  # resumable: --resume falls back to it
                    if world.is_main:
                        paths.prune_snapshots(loop.keep_checkpoints)
                save(epoch, 0)
        _save_final(task, paths.final, world, epoch, config_dict, frozen)
        completed = True
        last = last or log.last_step_metrics()  # a rerun after the last epoch trained nothing more
    except (_Interrupted, KeyboardInterrupt) as exc:
        save(epoch, index)
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
    task,
    optimizer,
    paths,
    world: World,
    position: dict[str, Any],
    loop,
    ipe: int,
    config_dict,
    frozen,
    target=None,
) -> None:
    """A resumable checkpoint (``latest.pkl``, or ``target``: a snapshot): rank 0 writes model + optimiser
    + position (``epoch``, ``index``, the partial ``epoch_metrics``), every other rank its own task state
    (queues) beside it."""
    target = target or paths.latest
    epoch, index = position["epoch"], position["index"]
    position = {**position, "iteration": epoch * ipe + index, "world_size": world.size}
    position.update(batch_size=loop.batch_size, arch=_arch(config_dict))
    if not world.is_main:
        save_checkpoint(paths.rank_state(target, world.rank), {"extra": task.extra_state(), **position})
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
        save_checkpoint(target, payload)


def _save_final(task, path: Path, world: World, epoch: int, config_dict, frozen) -> None:
    if world.is_main:
        paths = CheckpointPaths(path.parent)
        payload = {"stage": task.name, **_model_payload(task, paths, frozen), "epoch": epoch}
        save_checkpoint(path, {**payload, "config": config_dict})


def _arch(config_dict) -> str | None:
    return ((config_dict or {}).get("model") or {}).get("arch")


def _restore(task, optimizer, paths: CheckpointPaths, world: World, ipe: int, loop, config_dict, say):
    """Load the newest resumable checkpoint that reads (``latest.pkl``, else the newest snapshot)."""
    candidates = [p for p in (paths.latest, *reversed(paths.snapshots())) if p.is_file()]
    skipped = []
    for path in candidates:
        try:
            payload = load_checkpoint(path)
            extra = payload["extra"]
            if world.size > 1 and not world.is_main:
                extra = load_checkpoint(paths.rank_state(path, world.rank))["extra"]
        except UnreadableCheckpointError as exc:
            skipped.append(str(exc))
            continue
        if "optimizer" not in payload:
            skipped.append(f"{path}: a snapshot of an older luss without the optimiser state")
            continue
        if skipped:
            say(f"{task.name}: resuming from {path}; skipped: " + " | ".join(skipped))
        check_same_setup(path, payload, task.name, world, loop, config_dict)
        load_model_state(task.model, payload["model"], str(path))
        optimizer.load_state_dict(payload["optimizer"])
        task.load_extra_state(extra)
        epoch, index = int(payload["epoch"]), int(payload["index"])
        # A checkpoint of an older luss has no epoch sums: its epoch then averages the steps run since.
        partial_epoch = payload.get("epoch_metrics") if index else None
        if index >= ipe:  # the data changed size since the save: start the next epoch
            epoch, index, partial_epoch = epoch + 1, 0, None
        return epoch, index, partial_epoch
    raise LussError(
        f"{paths.directory}: no checkpoint to resume {task.name} from loads: "
        + " | ".join(skipped)
        + ". Fix: delete the damaged files (or the whole folder) and train this stage again."
    )


def check_same_setup(path: Path, payload: dict, stage: str, world: World, loop, config_dict) -> None:
    """Resuming must use the ranks, global batch and architecture the checkpoint was made with."""
    saved_world = payload.get("world_size", 1)
    if saved_world != world.size:
        raise LussError(
            f"{path} was written by {saved_world} ranks, this run has {world.size}. Resume with "
            f"mpirun -np {saved_world} (the per-rank queues and the data shards depend on it), or start "
            "a new --run."
        )
    saved_batch = payload.get("batch_size")
    if saved_batch is not None and saved_batch != loop.batch_size:
        raise LussError(
            f"{path} was trained with global batch {saved_batch} ({stage}.loop.batch_size), this run asks "
            f"for {loop.batch_size}: the saved position and lr schedule count batches of {saved_batch}. "
            f"Resume with --set {stage}.loop.batch_size={saved_batch}, or start a new --run."
        )
    saved_arch, arch = payload.get("arch"), _arch(config_dict)
    if saved_arch is not None and arch is not None and saved_arch != arch:
        raise LussError(
            f"{path} holds a {saved_arch} network, this run builds {arch} (model.arch). Resume with "
            f"--set model.arch={saved_arch} (or its preset), or start a new --run."
        )
