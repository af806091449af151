"""The frame every stage runs in: declared sub-steps, which ranks run each, who waits, done-markers, resume.

A stage is a list of :class:`StageStep`. :func:`run_steps` runs them in order on every rank:

* a step with a ``marker`` that exists is skipped (a rerun resumes after the last finished step);
* ``ranks="all"``: every rank runs it (on its shard); ``ranks="main"``: rank 0 runs it, the others wait;
* a barrier ends each step, so no rank starts the next one before every rank's files exist; then rank 0
  alone writes the step's marker (``{"step": name, **info}``, atomically) and a second barrier makes every
  rank see the same markers;
* a step that returns ``None`` did not finish (an interrupted training): no marker, and the stage stops
  there (:attr:`StepsResult.completed` is false; rerun with ``--resume``).

A stage with one step (pretrain, finetune) uses ``RUN/<stage>/.done`` as that step's marker; a stage with
several (cluster) gives each ``RUN/<stage>/.<step>.done`` and writes ``.done`` once every step is done
(:func:`mark_stage_done`). Steps without a marker (predict, refine) resume from their own outputs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tools.atomic_io import atomic_write_json
from tools.engine.distributed import World, barrier, env_world

Ranks = Literal["all", "main"]


@dataclass(frozen=True)
class StageStep:
    """One sub-step: ``run(resume) -> info`` (``None``: stopped before its end)."""

    name: str
    run: Callable[[bool], dict[str, Any] | None]
    ranks: Ranks = "all"
    marker: Path | None = None


@dataclass
class StepsResult:
    completed: bool
    info: dict[str, dict[str, Any]] = field(default_factory=dict)  # step name -> what it returned
    skipped: list[str] = field(default_factory=list)  # steps whose marker existed


def read_marker(marker: Path) -> dict[str, Any]:
    """A done-marker's content (``{}`` for an empty legacy marker)."""
    return json.loads(marker.read_text() or "{}")


def run_steps(
    stage: str,
    steps: Sequence[StageStep],
    resume: bool,
    say: Callable[[str], None] = print,
    world: World | None = None,
) -> StepsResult:
    """Run ``steps`` in order as the module docstring says; every rank calls this."""
    world = world or env_world()
    result = StepsResult(True)
    for step in steps:
        if step.marker is not None and step.marker.is_file():
            say(f"{stage}: step {step.name} already done ({step.marker}); skipping.")
            result.skipped.append(step.name)
            result.info[step.name] = read_marker(step.marker)
            continue
        if len(steps) > 1 and step.marker is not None:
            say(f"{stage}: step {step.name}")
        info = step.run(resume) if step.ranks == "all" or world.is_main else {}
        finished = info is not None
        barrier()
        if finished and world.is_main and step.marker is not None:
            atomic_write_json(step.marker, {"step": step.name, **info})
        barrier()
        if not finished:
            result.completed = False
            return result
        result.info[step.name] = info
    return result


def mark_stage_done(marker: Path, content: dict[str, Any], world: World | None = None) -> None:
    """Rank 0 writes the stage's ``.done`` (atomically, last); every rank waits for it."""
    world = world or env_world()
    if world.is_main:
        atomic_write_json(marker, content)
    barrier()
