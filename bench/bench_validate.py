"""Benchmark `luss validate-data`'s full check: files decoded per second by worker count.

    .venv/bin/python bench/bench_validate.py [--size 112] [--train-per-class 48] [--workers 1 2 4]

Writes a demo dataset (`luss demo-data`, 8 classes; `--size 400` gives ImageNet-like image sizes) into a
temporary directory and times :func:`tools.data.validate.validate_dataset` decoding every image and
mask, once per worker count. Prints a table; never fails on time. At N images/s, ImageNet-S50's 64k
train images (+ 752 validation images and masks) take 65k / N seconds.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tools.data.demo import DemoSpec, generate_demo_dataset
from tools.data.validate import validate_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=112, help="demo image shorter side (demo default 112)")
    parser.add_argument("--train-per-class", type=int, default=48)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    spec = DemoSpec(train_per_class=args.train_per_class, size=args.size)
    with tempfile.TemporaryDirectory() as tmp:
        root = generate_demo_dataset(Path(tmp) / "demo", spec, progress=False)
        table = Table(title=f"validate-data, full decode ({spec.classes} classes, size {args.size})")
        for column in ("workers", "images", "masks", "seconds", "files/s", "images/s"):
            table.add_column(column, justify="right")
        validate_dataset(root, workers=1, progress=False)  # warm the page cache
        for workers in args.workers:
            start = time.perf_counter()
            report = validate_dataset(root, workers=workers, progress=False)
            seconds = time.perf_counter() - start
            images = sum(c.images for c in report.counts.values())
            masks = sum(c.masks or 0 for c in report.counts.values())
            assert report.ok, report.errors
            table.add_row(
                str(workers),
                str(images),
                str(masks),
                f"{seconds:.2f}",
                f"{(images + masks) / seconds:.0f}",
                f"{images / seconds:.0f}",
            )
        Console().print(table)


if __name__ == "__main__":
    main()
