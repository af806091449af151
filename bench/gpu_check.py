"""The GPU check (issue 12), one call on one NVIDIA GPU, in under 8 minutes; prints one table.

    bash bench/gpu_check.sh          # on the GPU machine: installs the carried wheels, then runs this
    python bench/gpu_check.py --smoke  # here, on the CPU: the same code paths at toy sizes

(a) ResNet-18 train step, batch 64 at 224: our Jittor code vs PyTorch on the same GPU (img/s, ratio);
    TF32 allowed on both sides (Jittor ``use_tensorcore=1``, as ``loop.tf32``; PyTorch's cuDNN default
    plus ``allow_tf32`` for matmuls).
(b) The luss50-sampass Stage-1 step (frozen SAM ViT-B + Feature Aggregator, 2x224 crops, batch 16):
    ``luss pretrain`` itself on the demo images with random SAM weights in the official layout, img/s
    from its metrics.jsonl (median of the logged windows after the first), fp32 (TF32) and AMP.
(c) The demo pipeline's wall time, stage by stage (pretrain to ``pack --check``).

Each part runs in its own process with its own time limit, so one failure (or a slow first compile)
is a row that says why, never a lost table. Jittor processes see the carried numpy < 2 first on the
path (``--jittor-path``); PyTorch runs with the machine's own packages.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))


def _env(extra_path: str = "", **extra: str) -> dict[str, str]:
    parts = [p for p in (extra_path, str(REPO), str(REPO / "bench"), os.environ.get("PYTHONPATH", "")) if p]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(parts), "PYTHONUNBUFFERED": "1", **extra}


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else "(no output)"


def _child(args: list[str], env: dict[str, str], timeout: float) -> tuple[dict | None, str]:
    """Run ``python gpu_check.py <part> ...``; its last stdout line is a JSON result."""
    cmd = [sys.executable, str(Path(__file__).resolve()), *args]
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return None, f"over its {timeout:.0f} s limit"
    if done.returncode != 0:
        return None, f"failed: {_last_line(done.stderr or done.stdout)}"
    return json.loads(done.stdout.strip().splitlines()[-1]), ""


# ---- parts, each run in a child process -------------------------------------------------------------


def part_train_step(framework: str, batch: int, size: int, steps: int, smoke: bool) -> dict:
    from bench_train_step import jittor_step, torch_step

    if framework == "jittor":
        step = jittor_step(batch, size)
        import jittor as jt

        jt.flags.use_tensorcore = 0 if smoke else 1
        device = "cuda" if jt.flags.use_cuda else "cpu"
    else:
        import torch

        device = "cuda" if torch.cuda.is_available() and not smoke else "cpu"
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
        step = torch_step(batch, size, device)
    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = (time.perf_counter() - start) / steps
    return {"img_s": batch / seconds, "device": device}


def part_stage1(precision: str, data: str, work: str, batch: int, size: int, smoke: bool) -> dict:
    work_dir = Path(work)
    sam = work_dir / "sam_vit_b_random.pth"  # written by the write-sam part, in a PyTorch process
    if not sam.is_file():
        raise FileNotFoundError(f"{sam}: the write-sam part did not write the random SAM weights")
    run = work_dir / f"stage1-{precision}"
    sets = [
        "pretrain.loop.epochs=1",
        f"pretrain.loop.batch_size={batch}",
        "pretrain.loop.log_every=2",
        f"pretrain.loop.workers={2 if smoke else 8}",
        f"pretrain.loop.precision={precision}",
        f"pretrain.crops.sizes=[{size}]",
        "pretrain.loop.checkpoint_freq=100",
    ]
    cmd = [sys.executable, "-m", "luss_cli", "pretrain", "--preset", "luss50-sampass", "--data", data]
    cmd += ["--run", str(run), "--sam-checkpoint", str(sam), *[a for s in sets for a in ("--set", s)]]
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(_last_line(done.stderr))
    rows = [json.loads(line) for line in (run / "pretrain" / "metrics.jsonl").read_text().splitlines()]
    rates = [r["img_s"] for r in rows if "img_s" in r][1:] or [r["img_s"] for r in rows if "img_s" in r]
    status = next((line for line in done.stderr.splitlines() if line.startswith("pretrain: device")), "")
    return {"img_s": statistics.median(rates), "status": status.strip()}


def part_import_jittor() -> dict:
    """Jittor's first import on a new machine compiles its core and CUDA support: timed on its own."""
    start = time.perf_counter()
    from tools.runtime import import_jittor

    jt = import_jittor()
    (jt.array([1.0, 2.0]) * 2).sync()
    return {"seconds": time.perf_counter() - start, "cuda": bool(jt.flags.use_cuda)}


def part_write_sam(work: str) -> dict:
    from tools.rehearsal.weights import write_sam_vit_b

    return {"path": str(write_sam_vit_b(Path(work) / "sam_vit_b_random.pth"))}


def part_demo(data: str, work: str, smoke: bool) -> dict:
    from tools.rehearsal.runner import PipelinePlan, checkout_env, pipeline_steps, run_steps

    run = Path(work) / "demo-run"
    loops = ("pretrain", "pixel_attention", "finetune")
    overrides = tuple(f"{x}.loop.{k}" for x in loops for k in ("epochs=1", "batch_size=4"))
    plan = PipelinePlan("demo", Path(data), run, Path(work) / "demo.zip", overrides if smoke else ())
    times = run_steps(
        pipeline_steps(plan, []), checkout_env(), timeout=1800, label="demo", say=lambda m: None
    )
    return {"stages": {t.stage: t.seconds for t in times}}


# ---- the table ---------------------------------------------------------------------------------------


def check(args) -> int:
    from rich.console import Console
    from rich.table import Table

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    jit = _env(args.jittor_path)
    plain = _env()
    smoke = ["--smoke"] if args.smoke else []
    batch, size, s1_batch, s1_size = (4, 64, 4, 64) if args.smoke else (64, 224, 16, 224)
    rows: list[tuple[str, str, str]] = []
    results: dict = {}
    start = time.perf_counter()

    first, err = _child(["import-jittor"], jit, args.compile_timeout)
    results["import_jittor"] = first
    detail = ("on CUDA" if first["cuda"] else "on the CPU: no usable CUDA") if first else ""
    rows.append(
        ("Jittor first import (compiles once)", f"{first['seconds']:.0f} s" if first else err, detail)
    )

    step_args = ["--batch", str(batch), "--size", str(size), "--steps", str(3 if args.smoke else 20), *smoke]
    jt_res, jt_err = _child(["train-step", "jittor", *step_args], jit, args.part_timeout)
    th_res, th_err = _child(["train-step", "torch", *step_args], plain, args.part_timeout)
    results["train_step"] = {"jittor": jt_res, "torch": th_res}
    ratio = f"{jt_res['img_s'] / th_res['img_s']:.2f}x (goal >= 0.9x)" if jt_res and th_res else "-"
    label = f"(a) ResNet-18 step, batch {batch}, {size} px"
    rows.append((f"{label}, Jittor", f"{jt_res['img_s']:.0f} img/s" if jt_res else jt_err, ratio))
    rows.append((f"{label}, PyTorch", f"{th_res['img_s']:.0f} img/s" if th_res else th_err, "1.00x"))

    _child(["write-sam", "--work", str(work)], plain, args.part_timeout)  # torch saves the official layout
    fp32 = None
    for precision in ("fp32", "amp"):
        s1 = ["stage1", precision, "--data", args.data, "--work", str(work)]
        s1 += ["--batch", str(s1_batch), "--size", str(s1_size), *smoke]
        res, err = _child(s1, jit, args.part_timeout)
        results[f"stage1_{precision}"] = res
        fp32 = res if precision == "fp32" else fp32
        goal = "goal >= 250 img/s" if precision == "amp" else "reference ~25 img/s per 2080 Ti"
        if res and fp32 and precision == "amp":
            goal = f"{res['img_s'] / fp32['img_s']:.2f}x fp32; {goal}"
        text = f"{res['img_s']:.1f} img/s" if res else err
        rows.append((f"(b) luss50-sampass Stage 1, batch {s1_batch}, 2x{s1_size}, {precision}", text, goal))

    demo, err = _child(["demo", "--data", args.data, "--work", str(work), *smoke], jit, args.demo_timeout)
    results["demo"] = demo
    if demo:
        total = sum(demo["stages"].values())
        stages = ", ".join(f"{k} {v:.0f}" for k, v in demo["stages"].items())
        rows.append(("(c) demo pipeline, wall time", f"{total:.0f} s", stages))
    else:
        rows.append(("(c) demo pipeline, wall time", err, ""))

    table = Table(title=f"luss GPU check ({time.perf_counter() - start:.0f} s)")
    for column in ("what", "measured", "ratio / goal / detail"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    Console(width=160).print(table)
    for key in ("stage1_fp32", "stage1_amp"):
        if results.get(key):
            print(f"{key}: {results[key]['status']}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="part")
    full = sub.add_parser("check", help="every part, then the table (the default)")
    for p in (parser, full):
        p.add_argument("--data", default="data/demo", help="demo dataset (luss demo-data) for (b) and (c)")
        p.add_argument("--work", default="/tmp/luss-gpu-check")
        p.add_argument("--out", default="bench/out")
        p.add_argument("--jittor-path", default="", help="put first on PYTHONPATH for Jittor parts (numpy<2)")
        p.add_argument("--compile-timeout", type=float, default=240)
        p.add_argument("--part-timeout", type=float, default=100)
        p.add_argument("--demo-timeout", type=float, default=180)
        p.add_argument("--smoke", action="store_true", help="toy sizes on the CPU: checks the script only")
    ts = sub.add_parser("train-step")
    ts.add_argument("framework", choices=["jittor", "torch"])
    s1 = sub.add_parser("stage1")
    s1.add_argument("precision", choices=["fp32", "amp"])
    ws = sub.add_parser("write-sam")
    sub.add_parser("import-jittor")
    demo = sub.add_parser("demo")
    for p in (ts, s1):
        p.add_argument("--batch", type=int, required=True)
        p.add_argument("--size", type=int, required=True)
    ts.add_argument("--steps", type=int, default=20)
    for p in (s1, demo):
        p.add_argument("--data", required=True)
    for p in (s1, ws, demo):
        p.add_argument("--work", required=True)
    for p in (ts, s1, demo):
        p.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.part in (None, "check"):
        return check(args)
    if args.part == "train-step":
        result = part_train_step(args.framework, args.batch, args.size, args.steps, args.smoke)
    elif args.part == "stage1":
        result = part_stage1(args.precision, args.data, args.work, args.batch, args.size, args.smoke)
    elif args.part == "write-sam":
        result = part_write_sam(args.work)
    elif args.part == "import-jittor":
        result = part_import_jittor()
    else:
        result = part_demo(args.data, args.work, args.smoke)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
