"""Benchmark ``luss prepare``: seconds per 10,000 images, train as symlinks and with ``--copy``.

    .venv/bin/python bench/bench_prepare.py [--images 10000] [--workers 4] [--keep]

Builds a synthetic ILSVRC2012 under ``bench/out/prepare/`` from the real ImageNet-S50 lists: every
listed val image (752 validation + 1,682 test sources, flat val/), the 500 train-semi images, and
train folders filled so that a ``--copy`` run writes about ``--images`` images; all are one real
500x375 JPEG of ImageNet's average size (about 110 KB), and a matching annotation zip (1,252 masks).
Then it times ``prepare`` in each mode from an empty output, a rerun with nothing left to do, and the
final validate-data pass separately. Prints a table; never fails on time.
"""

from __future__ import annotations

import argparse
import io
import shutil
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image
from rich.console import Console
from rich.table import Table

from tools.data.label_codec import label_png_bytes
from tools.data.split_lists import load_split_lists, semi_source_wnid
from tools.data.validate import validate_dataset
from tools.prepare.prepare import dataset_root, prepare_imagenet_s

OUT = Path(__file__).resolve().parent / "out" / "prepare"
SIZE = (500, 375)


def _jpeg() -> bytes:
    """A 500x375 JPEG of smooth noise, about ImageNet's average file size."""
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (SIZE[1] // 2, SIZE[0] // 2, 3), dtype=np.uint8)
    image = Image.fromarray(small).resize(SIZE, Image.BILINEAR)
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def build_inputs(root: Path, images: int) -> tuple[Path, Path, int]:
    """The synthetic ILSVRC2012 and annotation zip; returns them and the number of source images."""
    lists = load_split_lists(50)
    jpeg = _jpeg()
    imagenet = root / "ILSVRC2012"
    count = 0
    for src, _ in lists.validation + lists.test:
        path = imagenet / "val" / src.split("/")[-1]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(jpeg)
        count += 1
    for image, _ in lists.train_semi:
        path = imagenet / "train" / semi_source_wnid(image) / image.split("/")[-1]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(jpeg)
    # A --copy run writes val + test + train-semi + every train image (the semi ones included).
    per_class = max(0, (images - count - len(lists.train_semi)) // len(lists.categories))
    for wnid in lists.categories:
        for i in range(per_class):
            (imagenet / "train" / wnid / f"{wnid}_{900000 + i}.JPEG").write_bytes(jpeg)
    labels = np.zeros((SIZE[1], SIZE[0]), np.int32)
    labels[100:250, 150:350] = 1
    mask = label_png_bytes(labels)
    zip_path = root / "ImageNetS50.zip"
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for _, m in lists.validation_masks:
            zf.writestr(f"ImageNetS50/validation-segmentation/{m}", mask)
        for _, m in lists.train_semi:
            zf.writestr(f"ImageNetS50/train-semi-segmentation/{m}", mask)
    return imagenet, zip_path, count + len(lists.train_semi) + per_class * len(lists.categories)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=10_000, help="Images a --copy run writes (about).")
    parser.add_argument("--workers", type=int, default=4, help="Copy threads (luss prepare --workers).")
    parser.add_argument("--keep", action="store_true", help="Keep bench/out/prepare afterwards.")
    args = parser.parse_args()
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    start = time.perf_counter()
    imagenet, zip_path, n_images = build_inputs(OUT, args.images)
    console = Console(width=120)
    console.print(f"synthetic ILSVRC2012: {n_images} images in {time.perf_counter() - start:.1f} s")
    table = Table(title=f"luss prepare, ImageNet-S50 lists, {args.workers} threads")
    for col in ("mode", "entries", "written", "MB", "prepare s", "s / 10k images", "rerun s", "validate s"):
        table.add_column(col, justify="left" if col == "mode" else "right")
    for mode, copy in (("symlinks", False), ("--copy", True)):
        out = OUT / f"out-{mode.strip('-')}"

        def run(copy: bool = copy, out: Path = out):
            return prepare_imagenet_s(
                imagenet, zip_path, out, 50, copy, workers=args.workers, validate=False, progress=False
            )

        first = run()
        again = run()
        t0 = time.perf_counter()
        report = validate_dataset(dataset_root(out, 50), check_train_images="header", progress=False)
        validate_s = time.perf_counter() - t0
        assert report.ok, report.errors[:5]
        per_10k = first.seconds / first.written * 10_000
        table.add_row(
            mode,
            str(first.entries),
            str(first.written),
            f"{first.bytes_written / 1e6:.0f}",
            f"{first.seconds:.1f}",
            f"{per_10k:.1f}",
            f"{again.seconds:.2f}",
            f"{validate_s:.1f}",
        )
    console.print(table)
    console.print(
        "s / 10k images = prepare seconds per 10,000 entries written (copies, links, masks), "
        "without the final validate-data; rerun = the same command again (nothing left to write)."
    )
    if not args.keep:
        shutil.rmtree(OUT)


if __name__ == "__main__":
    main()
