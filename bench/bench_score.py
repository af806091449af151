"""Benchmark ``luss score``: the 752-image ImageNet-S50 validation set, boundaries on.

    .venv/bin/python bench/bench_score.py [--workers 2] [--regenerate]

The first run writes a synthetic, deterministic stand-in of the split under
``bench/out/score-data`` (PNG only: the scorer reads just the GT and prediction PNGs; empty
``train/<wnid>/`` folders give the class list): images of ImageNet-S size (about 500x375, varied),
one to three objects per image with ignore bands along their outlines, and predictions that are
permuted, shifted and noisy copies. Later runs reuse it. Prints a table; never fails on time.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from tools.data.label_codec import IGNORE_ID, write_label_png
from tools.evaluation.scorer import score_predictions

NUM_CLASSES = 50
NUM_IMAGES = 752
TARGET_SECONDS = 20.0
SIZES = [(375, 500), (500, 375), (333, 500), (500, 333), (375, 500), (400, 500), (281, 500), (500, 500)]
OUT = Path(__file__).resolve().parent / "out" / "score-data"
MARKER = OUT / ".complete-v1"


def wnid(class_id: int) -> str:
    return f"n{class_id:08d}"


def synth_image(index: int) -> tuple[str, np.ndarray, np.ndarray]:
    """One (key, gt, prediction), deterministic in ``index``."""
    rng = np.random.default_rng(1000 + index)
    perm = np.random.default_rng(7).permutation(NUM_CLASSES) + 1  # the model's cluster ids
    main_class = index % NUM_CLASSES + 1
    h, w = SIZES[index % len(SIZES)]
    yy, xx = np.mgrid[0:h, 0:w]
    gt = np.zeros((h, w), np.int32)
    classes = [main_class, *rng.integers(1, NUM_CLASSES + 1, size=rng.integers(0, 3))]
    for n, c in enumerate(classes):
        scale = 0.45 if n == 0 else 0.15
        cy, cx = rng.uniform(0.25, 0.75) * h, rng.uniform(0.25, 0.75) * w
        ry, rx = rng.uniform(0.4, 1.0) * scale * h, rng.uniform(0.4, 1.0) * scale * w
        r = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
        band = (r > 1.0) & (r < 1.0 + 8.0 / min(ry, rx))  # a few pixels of "ignore" along the outline
        gt[band] = IGNORE_ID
        gt[r <= 1.0] = c
    clean = np.where(gt == IGNORE_ID, 0, gt)
    pred = np.roll(
        perm[clean - 1] * (clean > 0), shift=(rng.integers(-6, 7), rng.integers(-6, 7)), axis=(0, 1)
    )
    for _ in range(rng.integers(2, 6)):  # wrong blocks: another cluster, or background
        y, x = rng.integers(0, h - 40), rng.integers(0, w - 40)
        pred[y : y + rng.integers(10, 60), x : x + rng.integers(10, 60)] = rng.integers(0, NUM_CLASSES + 1)
    if rng.random() < 0.2:  # the whole object in the wrong cluster
        pred[pred == perm[main_class - 1]] = perm[rng.integers(0, NUM_CLASSES)]
    return f"{wnid(main_class)}/ILSVRC2012_val_{index:08d}", gt, pred


def write_image(index: int) -> None:
    key, gt, pred = synth_image(index)
    write_label_png(OUT / "data" / "validation-segmentation" / f"{key}.png", gt)
    write_label_png(OUT / "pred" / f"{key}.png", pred)


def ensure_data(workers: int, regenerate: bool) -> None:
    if MARKER.exists() and not regenerate:
        return
    shutil.rmtree(OUT, ignore_errors=True)
    for c in range(1, NUM_CLASSES + 1):
        (OUT / "data" / "train" / wnid(c)).mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(max(1, workers)) as pool:
        pool.map(write_image, range(NUM_IMAGES), chunksize=16)
    MARKER.write_text("ok\n")
    Console(stderr=True).print(
        f"wrote {NUM_IMAGES} GT + prediction PNGs in {time.perf_counter() - started:.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--regenerate", action="store_true", help="rewrite the cached synthetic split")
    args = parser.parse_args()
    ensure_data(args.workers, args.regenerate)

    started = time.perf_counter()
    result = score_predictions(
        OUT / "pred", OUT / "data", workers=args.workers, boundary=True, progress=False
    )
    seconds = time.perf_counter() - started

    table = Table(title="luss score: ImageNet-S50 validation stand-in, boundaries on, Hungarian recomputed")
    for name in ("images", "workers", "seconds", "img/s", "target", "mIoU", "mBIoU"):
        table.add_column(name, justify="right")
    table.add_row(
        str(result.num_images),
        str(args.workers),
        f"{seconds:.2f}",
        f"{result.num_images / seconds:.1f}",
        f"< {TARGET_SECONDS:.0f} s {'ok' if seconds < TARGET_SECONDS else 'MISSED'}",
        f"{result.miou:.2f}",
        f"{result.mbiou:.2f}",
    )
    Console().print(table)


if __name__ == "__main__":
    main()
