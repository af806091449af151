"""Benchmark one Stage-1-style train step of ResNet-18 (batch 8, 224x224): our Jittor code vs PyTorch.

    .venv/bin/python bench/bench_train_step.py [--batch 8] [--size 224] [--steps 10] [--warmup 3]

Both frameworks run the same network shape (torchvision's ResNet-18 layout, 512-d features), the same
loss (a linear classifier on pooled features, cross-entropy on fixed random labels) and SGD with
momentum, on the same CPU, one after the other in this process. Our side is `models.resnet.resnet18`
with the engine's optimiser (`tools.engine.optimizer.SGDLarc`). Then the SAMPASS 2x224 multi-crop
loader (`tools.data.loader.BatchLoader`, 2 workers) is timed on ImageNet-size JPEGs, and compared with
what the Jittor step consumes (images per second). Prints a table; never fails on time.
Target (issue): Jittor >= 0.8x PyTorch; data wait < 5 % of the step time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table


def time_jittor(batch: int, size: int, steps: int, warmup: int) -> float:
    """Seconds per train step of our Jittor ResNet-18."""
    from tools.runtime import configure_runtime

    configure_runtime()
    import jittor as jt
    from jittor import nn

    from models.resnet import resnet18
    from tools.config.schema import OptimConfig
    from tools.engine.optimizer import SGDLarc

    jt.set_global_seed(0)
    backbone = resnet18()
    classifier = nn.Linear(512, 100)
    params = backbone.parameters() + classifier.parameters()
    optimizer = SGDLarc(params, OptimConfig(base_lr=0.1, momentum=0.9, weight_decay=1e-6))
    rng = np.random.default_rng(0)
    x = jt.array(rng.normal(size=(batch, 3, size, size)).astype(np.float32))
    y = jt.array(rng.integers(0, 100, size=batch).astype(np.int32))

    def step() -> None:
        logits = classifier(backbone(x).mean(dims=(2, 3)))
        loss = nn.cross_entropy_loss(logits, y)
        optimizer.step(loss, 0.1)
        jt.sync_all(True)

    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def time_torch(batch: int, size: int, steps: int, warmup: int) -> float:
    """Seconds per train step of torchvision's ResNet-18 with the same head, loss and optimiser."""
    import torch
    import torchvision

    torch.manual_seed(0)
    backbone = torchvision.models.resnet18(num_classes=1000)
    backbone.fc = torch.nn.Identity()
    classifier = torch.nn.Linear(512, 100)
    params = list(backbone.parameters()) + list(classifier.parameters())
    optimizer = torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-6)
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(batch, 3, size, size)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 100, size=batch))

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(classifier(backbone(x)), y)
        loss.backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


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
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--loader-images", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    jittor_s = time_jittor(args.batch, args.size, args.steps, args.warmup)
    torch_s = time_torch(args.batch, args.size, args.steps, args.warmup)
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


if __name__ == "__main__":
    main()
