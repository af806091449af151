"""Benchmark one Stage-1-style train step of ResNet-18 (batch 8, 224x224): our Jittor code vs PyTorch.

    .venv/bin/python bench/bench_train_step.py [--batch 8] [--size 224] [--steps 10] [--warmup 3] [--profile]

Both frameworks run the same network shape (torchvision's ResNet-18 layout, 512-d features), the same
loss (a linear classifier on pooled features, cross-entropy on fixed random labels) and SGD with
momentum, on the same CPU in this process, timed in alternating rounds (median per side). Our side is
`models.resnet.resnet18` with the engine's optimiser (`tools.engine.optimizer.SGDLarc`). Then the
SAMPASS 2x224 multi-crop loader (`tools.data.loader.BatchLoader`, 2 workers) is timed on ImageNet-size
JPEGs, and compared with what the Jittor step consumes (images per second). Prints a table; never
fails on time.
``--profile`` adds where the Jittor step's time goes (oneDNN convolutions, our OpenMP BatchNorm, ReLU and
max-pool kernels, Jittor's fused element-wise kernels), from Jittor's own profiler.
Target (issue): Jittor >= 0.8x PyTorch; data wait < 5 % of the step time.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table


def jittor_step(batch: int, size: int, epoch_means: bool = True):
    """One train step of our Jittor ResNet-18 (a callable that returns when the step has run).

    ``epoch_means``: the loss also goes into the trainer's running epoch sums, executed with the update
    as ``tools.engine.trainer.fit`` does every step (its ``epoch_*`` metrics)."""
    from tools.runtime import configure_runtime

    configure_runtime()
    import jittor as jt
    from jittor import nn

    from models.resnet import resnet18
    from tools.config.schema import OptimConfig
    from tools.engine.epoch_means import EpochMeans
    from tools.engine.optimizer import SGDLarc

    jt.set_global_seed(0)
    backbone = resnet18()
    classifier = nn.Linear(512, 100)
    params = backbone.parameters() + classifier.parameters()
    optimizer = SGDLarc(params, OptimConfig(base_lr=0.1, momentum=0.9, weight_decay=1e-6))
    rng = np.random.default_rng(0)
    x = jt.array(rng.normal(size=(batch, 3, size, size)).astype(np.float32))
    y = jt.array(rng.integers(0, 100, size=batch).astype(np.int32))
    means = EpochMeans()

    def step() -> None:
        logits = classifier(backbone(x).mean(dims=(2, 3)))
        loss = nn.cross_entropy_loss(logits, y)
        optimizer.step(loss, 0.1, outputs=means.add({"loss": loss}) if epoch_means else ())
        means.commit()
        jt.sync_all(True)

    return step


def jittor_breakdown(step, steps: int) -> dict[str, float]:
    """``{kernel kind: ms per step}`` of ``steps`` Jittor steps, from Jittor's profiler."""
    import jittor as jt

    jt.profiler.start(0, 0)
    for _ in range(steps):
        step()
    jt.profiler.stop()
    return kernel_breakdown(jt.profiler.report(), steps)


def kernel_kind(name: str) -> str:
    """A readable group for one Jittor profiler row (its kernel key; a code op's key holds its source)."""
    ours = re.search(r"luss-kernel: ([\w -]+?) (forward|backward)", name)
    if ours:  # models/batchnorm.py, relu.py, maxpool.py: our multithreaded CPU kernels
        return f"{ours.group(1)} fwd+bwd, our OpenMP kernels"
    for prefix, kind in (
        ("mkl_conv_backward_w", "conv backward (weights), oneDNN"),
        ("mkl_conv_backward_x", "conv backward (input), oneDNN"),
        ("mkl_conv", "conv forward, oneDNN"),
        ("mkl_matmul", "matmul, oneDNN"),
        ("code", "other code-op kernels"),
    ):
        if name.startswith(prefix):
            return kind
    if "reduce" in name:
        return "fused kernels with a reduction (Jittor)"
    return "fused element-wise kernels (Jittor: residual add, SGD)"


def kernel_breakdown(report: list, steps: int) -> dict[str, float]:
    """``{kernel kind: ms per step}`` from ``jt.profiler.report()`` (a header row, then a row per kernel)."""
    column = report[0].index("TotalTime")  # nanoseconds
    totals: dict[str, float] = {}
    for row in report[1:]:
        kind = kernel_kind(str(row[0]))
        totals[kind] = totals.get(kind, 0.0) + float(row[column]) / 1e6 / steps
    return dict(sorted(totals.items(), key=lambda item: -item[1]))


def torch_step(batch: int, size: int, device: str = "cpu"):
    """One train step of torchvision's ResNet-18 with the same head, loss and optimiser."""
    import torch
    import torchvision

    torch.manual_seed(0)
    backbone = torchvision.models.resnet18(num_classes=1000)
    backbone.fc = torch.nn.Identity()
    classifier = torch.nn.Linear(512, 100)
    backbone, classifier = backbone.to(device), classifier.to(device)
    params = list(backbone.parameters()) + list(classifier.parameters())
    optimizer = torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-6)
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(batch, 3, size, size)).astype(np.float32)).to(device)
    y = torch.from_numpy(rng.integers(0, 100, size=batch)).to(device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(classifier(backbone(x)), y)
        loss.backward()
        optimizer.step()
        if device != "cpu":
            torch.cuda.synchronize()

    return step


def time_interleaved(steps: dict, per_round: int, rounds: int, warmup: int) -> dict[str, float]:
    """Median seconds per step of each callable, timed in alternating rounds of ``per_round`` steps.

    Alternating keeps a change in background load (2 shared cores) from landing on one side only.
    """
    for step in steps.values():
        for _ in range(warmup):
            step()
    samples: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(per_round):
                step()
            samples[name].append((time.perf_counter() - start) / per_round)
    return {name: float(np.median(values)) for name, values in samples.items()}


def loader_images_per_second(batch: int, images: int, workers: int) -> float:
    """Images/s of the SAMPASS 2x224 multi-crop loader over ImageNet-size JPEGs."""
    # The same synthetic photos as bench_data.py (bench/ is on sys.path when run as a script).
    from bench_data import RECIPES, time_pass, write_images

    from tools.data.multicrop import MultiCropDataset

    with tempfile.TemporaryDirectory() as tmp:
        paths = write_images(Path(tmp), images)
        dataset = MultiCropDataset(paths, RECIPES["SAMPASS 2x224"])
        rate, _ = time_pass(dataset, batch, workers)
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=4, help="steps per timing round")
    parser.add_argument("--rounds", type=int, default=5, help="alternating Jittor/PyTorch rounds")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--loader-images", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--profile", action="store_true", help="also print where the Jittor step's time goes")
    args = parser.parse_args()

    steps = {"jittor": jittor_step(args.batch, args.size), "torch": torch_step(args.batch, args.size)}
    seconds = time_interleaved(steps, args.steps, args.rounds, args.warmup)
    jittor_s, torch_s = seconds["jittor"], seconds["torch"]
    breakdown = jittor_breakdown(steps["jittor"], args.steps) if args.profile else {}
    loader_rate = loader_images_per_second(args.batch, args.loader_images, args.workers)
    consumed = args.batch / jittor_s  # images/s the Jittor step eats
    # With the loader running ahead in worker processes, the step waits only for the shortfall.
    wait = max(0.0, 1.0 - loader_rate / consumed)

    table = Table(title=f"ResNet-18 train step, batch {args.batch}, {args.size}x{args.size}, CPU")
    for column in ("what", "s/step", "img/s", "vs PyTorch / target"):
        table.add_column(column, justify="right" if column != "what" else "left")
    ratio = torch_s / jittor_s
    table.add_row(
        "Jittor (ours)", f"{jittor_s:.3f}", f"{args.batch / jittor_s:.1f}", f"{ratio:.2f}x (>= 0.8x)"
    )
    table.add_row("PyTorch", f"{torch_s:.3f}", f"{args.batch / torch_s:.1f}", "1.00x")
    table.add_row(
        f"loader 2x224, {args.workers} workers", "-", f"{loader_rate:.1f}", f"data wait {wait:.1%} (< 5 %)"
    )
    Console().print(table)
    if breakdown:
        kinds = Table(title="Jittor step by kernel kind (Jittor profiler)")
        kinds.add_column("kernels")
        kinds.add_column("ms/step", justify="right")
        kinds.add_column("share", justify="right")
        total = sum(breakdown.values())
        for kind, ms in breakdown.items():
            kinds.add_row(kind, f"{ms:.1f}", f"{ms / total:.0%}")
        Console().print(kinds)


if __name__ == "__main__":
    main()
