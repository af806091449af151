"""Run one rehearsed preset end to end under ``mpirun -np N`` on the CPU, stage by stage, timed.

Each stage is the very command a user runs (``python -m luss_cli <stage> ...``) with the preset's
name, the :mod:`~tools.rehearsal.shrink` overrides, and random weights in the official layouts where
the preset needs checkpoints. The last step is ``luss pack --check`` on the zip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tools.config.loader import load_config
from tools.errors import LussError
from tools.rehearsal.shrink import shrink_overrides
from tools.rehearsal.weights import write_dino_vit_tiny, write_sam_vit_b

# SAM voting with a random SAM: a coarse point grid and no quality filters, so masks exist at all.
REFINE_ARGS = ("--points-per-side", "4", "--points-per-batch", "16", "--pred-iou-thresh", "-100")
REFINE_ARGS += ("--stability-score-thresh", "0", "--box-nms-thresh", "1.0")


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


def mpirun_prefix(ranks: int) -> list[str]:
    """OpenMPI's launcher as the Makefile uses it (``--bind-to none``), oversubscribed for small CPUs."""
    found = shutil.which("mpirun")
    if found is None:
        raise LussError("mpirun not found: install OpenMPI (apt-get install openmpi-bin libopenmpi-dev).")
    cmd = [found, "--oversubscribe", "--bind-to", "none", "-np", str(ranks)]
    if os.geteuid() == 0:
        cmd.insert(1, "--allow-run-as-root")
    return cmd


def _cpu_env() -> dict[str, str]:
    checkout = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (checkout, os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "LUSS_FORCE_CPU": "1", "nvcc_path": "", "log_silent": "1", "PYTHONPATH": path}


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
    config = load_config(preset)
    run, weights = work / preset / "run", work / "weights"
    sam = config.model.arch.startswith("sam_")
    dino = config.cluster.saliency.enabled and config.cluster.saliency.features == "dino"
    sets = [a for o in shrink_overrides(preset) for a in ("--set", o)]
    common = ["--preset", preset, "--data", str(data), "--run", str(run)]
    sam_flag = ["--sam-checkpoint", str(write_sam_vit_b(weights / "sam_vit_b_random.pth"))] if sam else []
    dino_flag = ["--dino-checkpoint", str(write_dino_vit_tiny(weights / "dino_vit_tiny.pth"))] if dino else []
    refine = refine and sam  # SAM voting follows the SAM presets, as `make submission SAM_CKPT=...` does
    pred_root = run / ("refine" if refine else "predict")
    zip_path = work / preset / f"{preset}.zip"

    mpi = [*mpirun_prefix(ranks), sys.executable, "-m", "luss_cli"]
    one = [sys.executable, "-m", "luss_cli"]
    steps: list[tuple[str, list[str]]] = [
        ("pretrain", [*mpi, "pretrain", *common, *sets, *sam_flag, "--resume"]),
        ("cluster", [*mpi, "cluster", *common, *sets, *dino_flag, "--resume"]),
        ("finetune", [*mpi, "finetune", *common, *sets, "--resume"]),
    ]
    for split in ("test", "validation"):
        steps.append(
            (f"predict {split}", [*mpi, "predict", "--run", str(run), "--data", str(data), "--split", split])
        )
    if refine:
        for split in ("test", "validation"):
            args = ["refine", "--run", str(run), "--data", str(data), "--split", split, *sam_flag[:2]]
            steps.append((f"refine {split}", [*mpi, *args, *REFINE_ARGS]))
    match = pred_root / "validation" / "match.json"
    steps.append(
        (
            "pack",
            [
                *one,
                "pack",
                str(pred_root / "test"),
                "--data",
                str(data),
                "--match",
                str(match),
                "--out",
                str(zip_path),
            ],
        )
    )
    steps.append(("pack --check", [*one, "pack", "--check", str(zip_path), "--data", str(data)]))

    result = RehearsalResult(preset, ranks, zip_path)
    for name, cmd in steps:
        say(f"rehearsal {preset}: {name}")
        start = time.perf_counter()
        done = subprocess.run(
            cmd, env=_cpu_env(), capture_output=True, text=True, timeout=timeout, check=False
        )
        result.stages.append(StageTime(name, time.perf_counter() - start))
        if done.returncode != 0:
            tail = (done.stdout[-3000:] + "\n" + done.stderr[-3000:]).strip()
            raise LussError(f"rehearsal {preset}: `{name}` failed (exit {done.returncode}):\n{tail}")
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
