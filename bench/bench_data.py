"""Benchmark the Stage-1 multi-crop loader: images per second by crop recipe and worker count.

    .venv/bin/python bench/bench_data.py [--images 64] [--batch 16] [--workers 0 1 2]

Writes ``--images`` synthetic JPEGs of about 500x375 (smooth colour fields with noise, so JPEG
decoding costs what a photo costs) into a temporary directory, then times full passes of
:class:`tools.data.loader.BatchLoader` over :class:`tools.data.multicrop.MultiCropDataset` for the
PASS LUSS-50 recipe (2x224 + 6x96) and the SAMPASS one (2x224). Prints a table; never fails on time.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from rich.console import Console
from rich.table import Table

from tools.data.loader import BatchLoader
from tools.data.multicrop import MultiCropDataset, MultiCropSpec

RECIPES = {
    "PASS 2x224 + 6x96": MultiCropSpec(
        sizes=(224, 96), counts=(2, 6), min_scales=(0.14, 0.05), max_scales=(1.0, 0.14)
    ),
    "SAMPASS 2x224": MultiCropSpec(sizes=(224,), counts=(2,), min_scales=(0.08,), max_scales=(1.0,)),
}
SIZES = [(500, 375), (375, 500), (500, 333), (500, 400)]


def write_images(folder: Path, count: int) -> list[str]:
    paths = []
    for i in range(count):
        rng = np.random.default_rng(i)
        w, h = SIZES[i % len(SIZES)]
        yy, xx = np.mgrid[0:h, 0:w] / max(w, h)
        base = np.stack(
            [np.sin(xx * rng.uniform(2, 9) + c) * np.cos(yy * rng.uniform(2, 9)) for c in range(3)]
        )
        rgb = (base.transpose(1, 2, 0) * 90 + 128 + rng.normal(0, 12, (h, w, 3))).clip(0, 255)
        path = folder / f"img_{i:04d}.jpg"
        Image.fromarray(rgb.astype(np.uint8)).save(path, quality=90)
        paths.append(str(path))
    return paths


def time_pass(dataset: MultiCropDataset, batch: int, workers: int) -> tuple[float, float]:
    """(images/s over one epoch, seconds to the first batch)."""
    loader = BatchLoader(dataset, batch, num_workers=workers, seed=0)
    start = time.perf_counter()
    first = None
    images = 0
    for crops, *_ in loader:
        first = first if first is not None else time.perf_counter() - start
        images += crops[0].shape[0]
    return images / (time.perf_counter() - start), first or 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    console = Console()
    table = Table(title=f"Multi-crop loader, {args.images} JPEGs ~500x375, batch {args.batch}")
    for column in ("recipe", "workers", "img/s", "first batch (s)", "ms / img"):
        table.add_column(column, justify="right" if column != "recipe" else "left")
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_images(Path(tmp), args.images)
        for name, spec in RECIPES.items():
            dataset = MultiCropDataset(paths, spec, seed=0)
            for workers in args.workers:
                rate, first = time_pass(dataset, args.batch, workers)
                table.add_row(name, str(workers), f"{rate:.1f}", f"{first:.2f}", f"{1000 / rate:.1f}")
    console.print(table)
    console.print(f"CPU cores visible: {os.cpu_count()}")


if __name__ == "__main__":
    main()
