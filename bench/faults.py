"""The fault matrix: SIGKILL every stage at random moments, rerun it, and compare every output file with an
uninterrupted run of the same seed.

    .venv/bin/python bench/faults.py [--kills 3] [--seed 0] [--stages "pretrain,cluster kmeans"] [--work DIR]

A tiny demo dataset (`luss demo-data` options) and tiny `--set` overrides of the demo preset make each
stage run in seconds. First the reference: every stage once, uninterrupted, in WORK/run; a copy of the run
folder is kept after each stage. Then, per stage: the run folder as it was before the stage, the stage's
command(s) started and killed with SIGKILL (the whole process group: the command and its loader
workers, as the OOM killer or a lost node would) at a random moment of the reference's duration, again
``--kills`` times, then run once more to the end. Every file of the run folder is then compared with the
reference (same path, so even files naming paths compare): PNGs, JSON, text and zips byte for byte
(a zip member by member), ``.npy``/``.npz`` arrays exactly, checkpoints tensor by tensor (the
``saved_at`` wall-clock stamp aside). Only ``metrics.jsonl`` (it logs img/s timings and, after a kill,
the epochs that ran twice) and the wall-clock keys of ``.done``/report JSON are left out. A leftover
``.tmp`` file or ``.lock`` is a difference. Prints one table; exits 1 when a rerun failed or an output
differs. Never fails on time.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tools.run_compare import compare_runs

REPO = Path(__file__).resolve().parents[1]
DEMO = ["--classes", "3", "--train-per-class", "6", "--val-per-class", "2", "--test-per-class", "2"]
DEMO += ["--size", "48"]
# Every training stage tiny (seconds), saliency on; the same overrides on every command of a run.
TINY = [
    "pretrain.crops.sizes=[32, 16]",
    "pretrain.crops.counts=[2, 1]",
    "pretrain.loop.epochs=3",
    "pretrain.loop.batch_size=6",
    "pretrain.loop.workers=1",
    "pretrain.loop.checkpoint_freq=1",
    "pretrain.loop.log_every=1",
    "pixel_attention.crops.sizes=[32]",
    "pixel_attention.loop.epochs=2",
    "pixel_attention.loop.batch_size=6",
    "pixel_attention.loop.workers=1",
    "pixel_attention.loop.checkpoint_freq=1",
    "pixel_attention.saliency_image_size=32",
    "cluster.saliency.image_size=64",
    "cluster.nredo=1",
    "cluster.short_side=48",
    "cluster.crop=32",
    "finetune.crop_size=32",
    "finetune.loop.epochs=3",
    "finetune.loop.batch_size=6",
    "finetune.loop.workers=1",
    "finetune.loop.checkpoint_freq=1",
    "predict.short_side=48",
]


@dataclass(frozen=True)
class Stage:
    name: str
    commands: tuple[tuple[str, ...], ...]


def stages(data: Path, run: Path) -> list[Stage]:
    luss = (sys.executable, "-m", "luss_cli")
    sets = tuple(arg for item in TINY for arg in ("--set", item))
    common = ("--preset", "demo", "--data", str(data), "--run", str(run), *sets)

    def cluster(step: str) -> Stage:
        return Stage(f"cluster {step}", ((*luss, "cluster", *common, "--step", step, "--resume"),))

    def per_split(command: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
        return tuple((*command, "--split", split) for split in ("validation", "test"))

    refine = (
        sys.executable,
        str(REPO / "bench" / "tiny_sam_refine.py"),
        "--run",
        str(run),
        "--data",
        str(data),
    )
    pack = (*luss, "pack", str(run / "refine" / "test"), "--data", str(data))
    pack += (
        "--match",
        str(run / "refine" / "validation" / "match.json"),
        "--out",
        str(run / "submission.zip"),
    )
    return [
        Stage("pretrain", ((*luss, "pretrain", *common, "--resume"),)),
        cluster("saliency"),
        cluster("attention"),
        cluster("kmeans"),
        cluster("labels"),
        Stage("finetune", ((*luss, "finetune", *common, "--resume"),)),
        Stage(
            "predict", per_split((*luss, "predict", "--run", str(run), "--data", str(data), "--workers", "1"))
        ),
        Stage("refine (tiny SAM)", per_split(refine)),
        Stage("pack", (pack,)),
        Stage("report", ((*luss, "report", "--run", str(run), "--data", str(data), "--workers", "1"),)),
    ]


@dataclass
class Outcome:
    stage: str
    reference_s: float
    attempts: int = 0  # runs started to be killed
    landed: int = 0  # of them, killed while running (the others had ended before their moment)
    moments: list[float] = field(default_factory=list)  # seconds after the start, of each landed kill
    reruns_ok: bool = False
    compared: int = 0
    identical: int = 0
    differences: list[str] = field(default_factory=list)
    error: str = ""


def _env() -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "LUSS_FORCE_CPU": "1", "nvcc_path": "", "log_silent": "1"}


def _run(command: tuple[str, ...], log: io.TextIOBase) -> None:
    log.write(f"$ {' '.join(command)}\n")
    log.flush()
    proc = subprocess.run(command, env=_env(), stdout=log, stderr=subprocess.STDOUT, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"exit {proc.returncode}: {' '.join(command[2:5])} ... (see {log.name})")


def _run_killed(commands, delay: float, log: io.TextIOBase) -> float | None:
    """Run ``commands`` in order and SIGKILL the one running ``delay`` seconds in. ``None`` when one was
    killed, else the seconds all of them took (they ended before the moment)."""
    start = time.monotonic()
    deadline = start + delay
    for command in commands:
        log.write(f"$ {' '.join(command)}  # SIGKILL at +{delay:.1f} s\n")
        log.flush()
        proc = subprocess.Popen(
            command, env=_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            _wait_group_gone(proc.pid)
            return None
        if proc.returncode != 0:
            raise RuntimeError(f"exit {proc.returncode} before the kill: {' '.join(command[2:5])}")
    return time.monotonic() - start


def _wait_group_gone(pgid: int, timeout_s: float = 10.0) -> None:
    """Orphaned loader workers of the group die with it (SIGKILL reaches every member)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


@contextlib.contextmanager
def _default_sigchld() -> Iterator[None]:
    """Jittor, when imported by the caller (the test suite), ends a process whose child dies of a
    signal (its SIGCHLD handler); the kills here are on purpose."""
    previous = signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    try:
        yield
    finally:
        signal.signal(signal.SIGCHLD, previous)


# ----------------------------------------------------------------------------------------- matrix


def reference_run(data: Path, run: Path, snapshots: Path, plan: list[Stage], log) -> dict[str, float]:
    """Every stage once; ``snapshots/<i>`` is the run folder after stage ``i`` (``0``: before any)."""
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir(parents=True)
    shutil.copytree(run, snapshots / "0")
    durations = {}
    for i, stage in enumerate(plan, start=1):
        start = time.monotonic()
        for command in stage.commands:
            _run(command, log)
        durations[stage.name] = time.monotonic() - start
        shutil.copytree(run, snapshots / str(i))
    return durations


def fault_trial(
    stage: Stage, index: int, run: Path, snapshots: Path, kills: int, moment, duration, log
) -> Outcome:
    """``kills`` SIGKILLs, each in a rerun of the killed state, then a rerun to the end. A moment that
    comes after the stage has ended (reruns are faster: Jittor compiled its kernels in the reference)
    does not count: the estimate becomes the time that run took, the stage starts over from the state
    before it, and another moment is drawn (at most 3 tries per kill)."""
    outcome = Outcome(stage.name, duration)
    estimate = duration

    def fresh() -> None:
        shutil.rmtree(run, ignore_errors=True)
        shutil.copytree(snapshots / str(index - 1), run)

    fresh()
    try:
        while outcome.landed < kills and outcome.attempts < 3 * kills:
            outcome.attempts += 1
            delay = moment() * estimate
            took = _run_killed(stage.commands, delay, log)
            if took is None:
                outcome.landed += 1
                outcome.moments.append(delay)
            else:
                estimate = took
                fresh()
        for command in stage.commands:
            _run(command, log)
        outcome.reruns_ok = True
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        outcome.error = str(exc)
        return outcome
    outcome.compared, outcome.identical, outcome.differences = compare_runs(snapshots / str(index), run)
    return outcome


def run_matrix(
    work: Path,
    kills: int = 3,
    seed: int = 0,
    only: list[str] | None = None,
    say: Callable = print,
    window: tuple[float, float] = (0.15, 0.95),
) -> list[Outcome]:
    """The whole matrix in ``work`` (data, run, snapshots, logs); ``only`` names the stages to fault
    (the reference always runs every stage up to the last one named). Each kill falls at a uniformly
    random fraction in ``window`` of the stage's reference duration."""
    data, run, snapshots = work / "data", work / "run", work / "after"
    shutil.rmtree(snapshots, ignore_errors=True)
    plan = stages(data, run)
    names = [s.name for s in plan]
    chosen = names if not only else [n for n in names if n in only]
    unknown = sorted(set(only or []) - set(names))
    if unknown:
        raise SystemExit(f"unknown stage(s) {unknown}; choose from {names}")
    plan = plan[: names.index(chosen[-1]) + 1]
    rng = random.Random(seed)
    with _default_sigchld(), open(work / "faults.log", "w") as log:
        if not (data / ".complete").is_file():
            _run((sys.executable, "-m", "luss_cli", "demo-data", str(data), "--overwrite", *DEMO), log)
        say(f"faults: reference run of {len(plan)} stages (log: {log.name})")
        durations = reference_run(data, run, snapshots, plan, log)
        outcomes = []
        for index, stage in enumerate(plan, start=1):
            if stage.name not in chosen:
                continue
            say(f"faults: {stage.name}: {kills} kill(s) within its {durations[stage.name]:.1f} s")
            moment = lambda: rng.uniform(*window)  # noqa: E731
            outcome = fault_trial(stage, index, run, snapshots, kills, moment, durations[stage.name], log)
            outcomes.append(outcome)
    return outcomes


def print_table(outcomes: list[Outcome]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Fault matrix: SIGKILL at random moments, rerun, compare with an uninterrupted run")
    columns = (
        "stage",
        "ref s",
        "kills",
        "tries",
        "killed at s",
        "rerun ok",
        "files",
        "identical",
        "differing",
    )
    for column in columns:
        table.add_column(
            column, justify="left" if column in ("stage", "killed at s", "differing") else "right"
        )
    for o in outcomes:
        differing = o.error or ("; ".join(o.differences[:3]) + (" ..." if len(o.differences) > 3 else ""))
        table.add_row(
            o.stage,
            f"{o.reference_s:.1f}",
            str(o.landed),
            str(o.attempts),
            ", ".join(f"{m:.1f}" for m in o.moments),
            "yes" if o.reruns_ok else "NO",
            str(o.compared),
            str(o.identical),
            differing or "-",
        )
    Console(width=160).print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=3, help="SIGKILLs per stage before the final rerun")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    parser.add_argument("--stages", default="", help="comma-separated stage names (default: all)")
    parser.add_argument("--work", type=Path, default=None, help="work folder (default: a temporary one)")
    args = parser.parse_args()
    only = [s.strip() for s in args.stages.split(",") if s.strip()] or None
    with contextlib.ExitStack() as stack:
        work = args.work or Path(stack.enter_context(_tempdir()))
        work.mkdir(parents=True, exist_ok=True)
        outcomes = run_matrix(work, args.kills, args.seed, only)
        print_table(outcomes)
    ok = all(o.reruns_ok and not o.differences and o.landed == args.kills for o in outcomes)
    sys.exit(0 if ok else 1)


@contextlib.contextmanager
def _tempdir() -> Iterator[str]:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="luss-faults-") as tmp:
        yield tmp


if __name__ == "__main__":
    main()
