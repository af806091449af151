"""Measure the stage ladder of a preset: one main run and two sibling runs that reuse its stages.

```
RUN              the preset (seeds overridden): pretrain, cluster, finetune, predict validation
RUN-nosal        RUN's pretrain; cluster without saliency (cluster.saliency.enabled=false,
                 pixel_attention.saliency_weight=0)
RUN-<head>       RUN's pretrain and cluster; finetune with the other head (last_layer <-> progressive)
```

A reused stage is hard-linked (copied where links fail), ``.done`` included, so it is not trained
again; finished stages of any of the three runs are skipped as usual, and an interrupted one resumes
from its last checkpoint (as ``--resume`` does). The ladder is saved as
``RUN/ladder.json`` for ``luss report``.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.config.loader import load_config, read_saved_config
from tools.errors import LussError
from tools.report.ladder import (
    PSEUDO_LABELS,
    PSEUDO_LABELS_PLAIN,
    REFINE,
    Ladder,
    LadderStep,
    cluster_summary,
    finetune_step_name,
    nested,
    pseudo_label_step,
    read_cluster_report,
    score_step,
    write_ladder,
)
from tools.run_layout import RunLayout

HEADS = ("last_layer", "progressive")
NO_SALIENCY = ("cluster.saliency.enabled=false", "pixel_attention.saliency_weight=0")
NO_SALIENCY_RUN = "nosal"


def seed_overrides(seed: int | None) -> list[str]:
    """``key=value`` strings that set every stage's seed (none: the preset's seeds)."""
    if seed is None:
        return []
    keys = ("pretrain.loop.seed", "pixel_attention.loop.seed", "finetune.loop.seed", "cluster.seed")
    return [f"{key}={seed}" for key in keys]


def other_head(head: str) -> str:
    if head not in HEADS:
        raise LussError(f"finetune.head {head!r}: the ladder compares {' and '.join(HEADS)}.")
    return next(h for h in HEADS if h != head)


def sibling_path(run: Path, name: str) -> Path:
    return run.with_name(f"{run.name}-{name.replace('_', '-')}")


def ladder_run_folders(run: Path) -> list[Path]:
    """The main run and every sibling the ladder may create (``--fresh`` deletes them all)."""
    return [run, sibling_path(run, NO_SALIENCY_RUN), *(sibling_path(run, head) for head in HEADS)]


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def sibling_run(run: Path, name: str, stages: tuple[str, ...]) -> Path:
    """``RUN-<name>`` holding ``stages`` of ``run`` (each finished, ``.done`` included)."""
    source, target = RunLayout.at(run), RunLayout.at(sibling_path(run, name))
    for stage in stages:
        if not source.is_done(stage):
            raise LussError(
                f"{source.stage_dir(stage)}: not finished; a sibling run can only reuse a finished stage."
            )
        if target.is_done(stage):
            continue
        if target.stage_dir(stage).exists():  # a copy cut short
            shutil.rmtree(target.stage_dir(stage))
        shutil.copytree(source.stage_dir(stage), target.stage_dir(stage), copy_function=_link_or_copy)
    return target.root


def check_seed(run: Path, seed: int) -> None:
    """Refuse to reuse a run trained with another seed (its finished stages would be skipped)."""
    trained = nested(read_saved_config(RunLayout.at(run).config_file), "pretrain", "loop", "seed")
    if trained is not None and trained != seed:
        raise LussError(f"{run} was trained with seed {trained}, not {seed}: pass --fresh or another --run.")


@dataclass
class StageClock:
    """Times each stage call; a stage whose ``.done`` existed before the call is reused (``None``)."""

    rows: list[tuple[str, float | None, int]] = field(default_factory=list)

    def run(self, name: str, images: int, done: Path | None, call: Callable[[], Any]) -> Any:
        reused = done is not None and done.exists()
        start = time.perf_counter()
        result = call()
        self.rows.append((name, None if reused else time.perf_counter() - start, images))
        return result


def _quiet(message: str) -> None:
    pass


def measure_ladder(
    preset: str,
    data_root: Path,
    run: Path,
    seed: int | None,
    floor: LadderStep,
    clock: StageClock,
    say: Callable[[str], None] = print,
) -> Ladder:
    """Train what is missing of the three runs, predict validation with both heads, save the ladder."""
    from tools.data.imagenet_s import ImageNetS
    from tools.evaluation import score_predictions
    from tools.stages.cluster import run_cluster
    from tools.stages.finetune import run_finetune
    from tools.stages.predict import run_predict
    from tools.stages.pretrain import run_pretrain

    overrides = seed_overrides(seed)
    config = load_config(preset, overrides)
    head, other = config.finetune.head, other_head(config.finetune.head)
    check_seed(run, config.pretrain.loop.seed)
    data = ImageNetS(data_root)
    n_train, n_val = len(data.samples("train")), len(data.samples("validation"))

    def stage(name: str, folder: Path, done_stage: str, call: Callable[[], Any]) -> Any:
        say(f"ladder: {name} -> {folder}")
        return clock.run(name, n_train, RunLayout.at(folder).done_marker(done_stage), call)

    def finetune_and_predict(cfg, folder: Path) -> Any:
        h = cfg.finetune.head
        stage(
            f"finetune ({h})",
            folder,
            "finetune",
            lambda: run_finetune(cfg, data_root, folder, resume=True, say=_quiet),
        )
        outcome = clock.run(
            f"predict validation ({h})",
            n_val,
            None,
            lambda: run_predict(
                cfg.predict, data_root, folder, "validation", overwrite=True, progress=False, say=_quiet
            ),
        )
        return outcome.score

    stage("pretrain", run, "pretrain", lambda: run_pretrain(config, data_root, run, resume=True, say=_quiet))
    stage("cluster", run, "cluster", lambda: run_cluster(config, data_root, run, resume=True, say=_quiet))
    scores = {head: finetune_and_predict(config, run)}
    plain = sibling_run(run, NO_SALIENCY_RUN, ("pretrain",))
    plain_config = load_config(preset, [*overrides, *NO_SALIENCY])
    stage(
        "cluster without saliency",
        plain,
        "cluster",
        lambda: run_cluster(plain_config, data_root, plain, resume=True, say=_quiet),
    )
    other_run = sibling_run(run, other, ("pretrain", "cluster"))
    scores[other] = finetune_and_predict(
        load_config(preset, [*overrides, f"finetune.head={other}"]), other_run
    )

    report, plain_report = read_cluster_report(run), read_cluster_report(plain)
    plain_step = pseudo_label_step(PSEUDO_LABELS_PLAIN, plain_report)
    plain_step.detail = f"{plain_step.detail}, run {plain.name}".lstrip(", ")
    steps = [floor, plain_step, pseudo_label_step(PSEUDO_LABELS, report)]
    for h in HEADS:
        detail = "the preset's head" if h == head else f"run {other_run.name}"
        steps.append(score_step(finetune_step_name(h), scores[h], detail))
    layout = RunLayout.at(run)
    if layout.match_file("refine").is_file():
        refined = score_predictions(
            layout.refine_dir("validation"), data, "validation", workers=0, progress=False
        )
        steps.append(score_step(REFINE, refined, f"on the {head} predictions"))
    clusters = {"with saliency": cluster_summary(report), "without saliency": cluster_summary(plain_report)}
    ladder = Ladder(f"make bench-pipeline, preset {preset}", steps, clusters, config.pretrain.loop.seed)
    write_ladder(run, ladder)
    return ladder
