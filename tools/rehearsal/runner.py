"""Run a preset end to end, stage by stage, timed: the very commands a user runs.

:func:`pipeline_steps` lists the commands (``python -m luss_cli <stage> ...``, optionally under
``mpirun``); :func:`run_steps` runs them in order and times each; :func:`rehearse` is the preset
rehearsal (:mod:`~tools.rehearsal.shrink` overrides, random weights in the official layouts, two CPU
ranks, ``luss pack --check`` last). ``bench/gpu_check.py`` runs the demo pipeline through the same two.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tools.config.loader import load_config
from tools.errors import LussError
from tools.rehearsal.shrink import shrink_overrides
from tools.rehearsal.weights import write_dino_vit_tiny, write_sam_vit_b

# SAM voting with a random SAM: a coarse point grid and no quality filters, so masks exist at all.
REFINE_ARGS = ("--points-per-side", "4", "--points-per-batch", "16", "--pred-iou-thresh", "-100")
REFINE_ARGS += ("--stability-score-thresh", "0", "--box-nms-thresh", "1.0")
LUSS = (sys.executable, "-m", "luss_cli")


@dataclass
class StageTime:
    stage: str
    seconds: float


@dataclass
class RehearsalResult:
    preset: str
    ranks: int
    zip_path: Path
    stages: list[StageTime] = field(default_factory=list)

    @property
    def total_seconds(self) -> float:
        return sum(s.seconds for s in self.stages)


@dataclass(frozen=True)
class PipelinePlan:
    """What one end-to-end run needs besides the data: where it writes and which checkpoints it reads."""

    preset: str
    data: Path
    run: Path
    zip_path: Path
    overrides: tuple[str, ...] = ()
    sam_checkpoint: Path | None = None
    dino_checkpoint: Path | None = None
    refine: bool = False  # SAM voting (needs sam_checkpoint), packed instead of the raw predictions
    refine_args: tuple[str, ...] = ()


def mpirun_prefix(ranks: int) -> list[str]:
    """OpenMPI's launcher as the Makefile uses it (``--bind-to none``), oversubscribed for small CPUs."""
    found = shutil.which("mpirun")
    if found is None:
        raise LussError("mpirun not found: install OpenMPI (apt-get install openmpi-bin libopenmpi-dev).")
    cmd = [found, "--oversubscribe", "--bind-to", "none", "-np", str(ranks)]
    if os.geteuid() == 0:
        cmd.insert(1, "--allow-run-as-root")
    return cmd


def owned_sets(overrides: Sequence[str]) -> dict[str, list[str]]:
    """``--set`` arguments per command: each override goes to the command owning its section."""
    from tools.config.run_config import OWNED_SECTIONS

    out: dict[str, list[str]] = {command: [] for command in OWNED_SECTIONS}
    for item in overrides:
        section = item.split(".", 1)[0]
        command = next(c for c, owned in OWNED_SECTIONS.items() if section in owned)
        out[command] += ["--set", item]
    return out


def pipeline_steps(plan: PipelinePlan, launch: list[str]) -> list[tuple[str, list[str]]]:
    """``(name, argv)`` of every stage, Stage 1 to ``pack --check``; ``launch`` prefixes the Jittor stages."""
    data, run = str(plan.data), str(plan.run)
    common = ["--data", data, "--run", run]
    sam = ["--sam-checkpoint", str(plan.sam_checkpoint)] if plan.sam_checkpoint else []
    dino = ["--dino-checkpoint", str(plan.dino_checkpoint)] if plan.dino_checkpoint else []
    staged = [*launch, *LUSS]
    # As a user runs it: the first command names the preset; later ones read RUN/config.yaml and each
    # --set goes to the command that owns its section (recorded in RUN/config-history.jsonl).
    sets = owned_sets(plan.overrides)
    steps = [
        (
            "pretrain",
            [*staged, "pretrain", "--preset", plan.preset, *common, *sets["pretrain"], *sam, "--resume"],
        ),
        ("cluster", [*staged, "cluster", *common, *sets["cluster"], *dino, "--resume"]),
        ("finetune", [*staged, "finetune", *common, *sets["finetune"], "--resume"]),
    ]
    splits = ("test", "validation")
    for split in splits:
        predict = ["predict", "--run", run, "--data", data, "--split", split, *sets["predict"]]
        steps.append((f"predict {split}", [*staged, *predict]))
    pred_root = plan.run / "predict"
    if plan.refine:
        if not sam:
            raise LussError("SAM voting needs a SAM checkpoint (PipelinePlan.sam_checkpoint)")
        pred_root = plan.run / "refine"
        for split in splits:
            args = ["refine", "--run", run, "--data", data, "--split", split, *sam, *plan.refine_args]
            steps.append((f"refine {split}", [*staged, *args]))
    match = str(pred_root / "validation" / "match.json")
    pack = ["pack", str(pred_root / "test"), "--data", data, "--match", match, "--out", str(plan.zip_path)]
    steps.append(("pack", [*LUSS, *pack]))
    steps.append(("pack --check", [*LUSS, "pack", "--check", str(plan.zip_path), "--data", data]))
    return steps


def run_steps(
    steps: list[tuple[str, list[str]]],
    env: Mapping[str, str],
    timeout: float,
    label: str,
    say: Callable[[str], None] = print,
) -> list[StageTime]:
    """Run ``steps`` in order, timing each; the first failure raises with the end of its output."""
    times = []
    for name, cmd in steps:
        say(f"{label}: {name}")
        start = time.perf_counter()
        done = subprocess.run(
            cmd, env=dict(env), capture_output=True, text=True, timeout=timeout, check=False
        )
        times.append(StageTime(name, time.perf_counter() - start))
        if done.returncode != 0:
            tail = (done.stdout[-3000:] + "\n" + done.stderr[-3000:]).strip()
            raise LussError(f"{label}: `{name}` failed (exit {done.returncode}):\n{tail}")
    return times


def checkout_env(**extra: str) -> dict[str, str]:
    """This environment with this checkout first on ``PYTHONPATH`` (and ``extra`` set)."""
    checkout = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (checkout, os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


def cpu_env(**extra: str) -> dict[str, str]:
    """:func:`checkout_env` forced onto the CPU, quiet (every rank of a CPU ``mpirun``)."""
    return checkout_env(LUSS_FORCE_CPU="1", nvcc_path="", log_silent="1", **extra)


def rehearse(
    preset: str,
    data: Path,
    work: Path,
    ranks: int = 2,
    timeout: float = 1800,
    refine: bool = True,
    say: Callable[[str], None] = print,
) -> RehearsalResult:
    """``preset`` from Stage 1 to a checked zip in ``work/<preset>/``; raises on the first failing stage.

    SAM presets also run SAM voting (``refine``, the slowest CPU step: a full ViT-B at 1024 px per image)
    and pack its output; ``refine=False`` packs the raw predictions instead.
    """
    from models.build import arch_spec

    config = load_config(preset)
    weights = work / "weights"
    sam = arch_spec(config.model.arch).sam
    saliency = config.cluster.saliency
    plan = PipelinePlan(
        preset=preset,
        data=data,
        run=work / preset / "run",
        zip_path=work / preset / f"{preset}.zip",
        overrides=tuple(shrink_overrides(preset)),
        sam_checkpoint=write_sam_vit_b(weights / "sam_vit_b_random.pth") if sam else None,
        dino_checkpoint=(
            write_dino_vit_tiny(weights / "dino_vit_tiny.pth")
            if saliency.enabled and saliency.features == "dino"
            else None
        ),
        refine=refine and sam,  # SAM voting follows the SAM presets, as `make submission SAM_CKPT=...`
        refine_args=REFINE_ARGS,
    )
    steps = pipeline_steps(plan, mpirun_prefix(ranks))
    env = cpu_env()
    result = RehearsalResult(preset, ranks, plan.zip_path)
    result.stages = run_steps(steps, env, timeout, f"rehearsal {preset}", say)
    return result


def format_table(results: list[RehearsalResult]) -> str:
    """One row per stage, one column per preset, seconds."""
    names = list(dict.fromkeys(s.stage for r in results for s in r.stages))
    head = "| stage | " + " | ".join(f"{r.preset} (s)" for r in results) + " |"
    rows = [head, "|---|" + "---|" * len(results)]
    for name in names:
        cells = [next((f"{s.seconds:.1f}" for s in r.stages if s.stage == name), "-") for r in results]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    rows.append("| **total** | " + " | ".join(f"**{r.total_seconds:.1f}**" for r in results) + " |")
    return "\n".join(rows)
