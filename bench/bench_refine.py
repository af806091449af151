"""Benchmark ``luss refine``: SAM mask generation vs the vote, and a re-vote of a cached split.

    .venv/bin/python bench/bench_refine.py [--images 2] [--revote-images 50] [--masks 100] [--threads 0]

1. *Generation*: SAM ViT-B with **random weights** (``build_sam_vit_b(checkpoint=None)``: the real
   architecture and cost, no checkpoint needed) and SAM's default generator parameters, through the
   real refine loop on ``--images`` synthetic images of ImageNet-S size (about 500x375). Random weights
   pass few of the default quality filters, so the vote is also timed on ``--masks`` synthetic masks
   (ellipses from 0.1 % to 50 % of the image, overlapping), about what a trained SAM returns.
2. *Re-vote*: a ``--revote-images`` split whose cache holds ``--masks`` synthetic masks per image is
   voted once, then re-voted in the other mode: the time per image includes reading the cache and
   the raw PNG and writing the refined PNG; SAM is never loaded.

Prints a table; the target is a vote below 1 % of SAM's time. Never fails on time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from rich.console import Console
from rich.table import Table

from tools.data.imagenet_s import ImageNetS
from tools.data.label_codec import write_label_png
from tools.refine.generator_config import GeneratorConfig, cache_fingerprint
from tools.refine.mask_cache import cache_path, save_mask_cache
from tools.refine.refiner import RefineOptions, refine_split
from tools.refine.voting import MaskSet, vote_by_masks
from tools.run_layout import RunLayout

SIZES = [(375, 500), (500, 375), (333, 500), (500, 333)]
TARGET_RATIO = 0.01
GPU_SAM_B_S = 1.383  # published SAM-B "everything" time, formats.md §7.3


def ellipse(h: int, w: int, rng: np.random.Generator, area_fraction: float) -> np.ndarray:
    yy, xx = np.ogrid[0:h, 0:w]
    aspect = rng.uniform(0.5, 2.0)
    ry = np.sqrt(area_fraction * h * w / np.pi * aspect)
    rx = area_fraction * h * w / np.pi / ry
    cy, cx = rng.uniform(0, h), rng.uniform(0, w)
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0


def synthetic_image(index: int) -> tuple[np.ndarray, np.ndarray]:
    """(RGB image, raw prediction): one or two objects, blocky like an upsampled network output."""
    rng = np.random.default_rng(index)
    h, w = SIZES[index % len(SIZES)]
    pred = np.zeros((h, w), np.int32)
    for label in rng.integers(1, 51, size=rng.integers(1, 3)):
        pred[ellipse(h, w, rng, rng.uniform(0.05, 0.3))] = label
    noise = rng.random((h // 8 + 1, w // 8 + 1)) < 0.1
    pred[np.kron(noise, np.ones((8, 8), bool))[:h, :w]] = 0
    image = (rng.random((h, w, 3)) * 60 + (pred[..., None] * 37 % 200)).astype(np.uint8)
    return image, pred


def synthetic_masks(h: int, w: int, n: int, seed: int) -> MaskSet:
    rng = np.random.default_rng(seed)
    fractions = np.exp(rng.uniform(np.log(0.001), np.log(0.5), size=n))
    dense = np.stack([ellipse(h, w, rng, f) for f in fractions])
    return MaskSet.from_dense(dense, rng.uniform(0.88, 1.0, n), rng.uniform(0.95, 1.0, n))


def make_split(root: Path, count: int) -> tuple[ImageNetS, RunLayout]:
    data_root, layout = root / "data", RunLayout.at(root / "run")
    for i in range(count):
        image, pred = synthetic_image(i)
        wnid = f"n{i % 5:08d}"
        path = data_root / "validation" / wnid / f"img_{i:05d}.JPEG"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(path, quality=90)
        write_label_png(layout.predict_dir("validation") / wnid / f"img_{i:05d}.png", pred)
    return ImageNetS(data_root), layout


def time_votes(preds: list[np.ndarray], masks: list[MaskSet], mode: str) -> float:
    """Mean seconds per image of ``vote_by_masks`` (best of 3 passes, to skip warm-up noise)."""
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for pred, m in zip(preds, masks, strict=True):
            vote_by_masks(pred, m, mode)
        best = min(best, (time.perf_counter() - t0) / len(preds))
    return best


def bench_generation(root: Path, images: int, console: Console) -> dict:
    import torch
    from segment_anything import sam_model_registry

    from tools.refine.sam_model import make_mask_source

    data, layout = make_split(root, images)
    config = GeneratorConfig()
    fingerprint, params = cache_fingerprint(config, "vit_b", "random-weights")
    torch.manual_seed(0)
    console.print(
        f"SAM ViT-B (random weights), default generator, {images} images, {torch.get_num_threads()} threads"
    )
    sam = sam_model_registry["vit_b"](checkpoint=None).eval()
    summary = refine_split(
        data,
        "validation",
        layout,
        RefineOptions(),
        lambda: make_mask_source(sam, config),
        fingerprint,
        params,
    )
    from tools.refine.mask_cache import load_mask_cache

    preds, masks = [], []
    for sample in data.samples("validation"):
        preds.append(synthetic_image(int(sample.stem.split("_")[1]))[1])
        masks.append(load_mask_cache(cache_path(layout.sam_cache_dir("validation"), sample.key)))
    return {
        "sam_s": summary.sam_seconds_per_image,
        "sam_masks": float(np.mean([len(m) for m in masks])),
        "vote_sam_masks_s": time_votes(preds, masks, "original"),
    }


def bench_revote(root: Path, images: int, n_masks: int) -> dict:
    data, layout = make_split(root, images)
    fingerprint, params = cache_fingerprint(GeneratorConfig(), "vit_b", "synthetic")
    preds, masks = [], []
    for i, sample in enumerate(data.samples("validation")):
        pred = synthetic_image(int(sample.stem.split("_")[1]))[1]
        m = synthetic_masks(*pred.shape, n_masks, seed=i)
        save_mask_cache(cache_path(layout.sam_cache_dir("validation"), sample.key), m, fingerprint, params)
        preds.append(pred)
        masks.append(m)
    cache_bytes = sum(p.stat().st_size for p in layout.sam_cache_dir("validation").rglob("*.npz"))

    def no_sam():
        raise AssertionError("a re-vote must not load SAM")

    first = refine_split(data, "validation", layout, RefineOptions("original"), no_sam, fingerprint, params)
    again = refine_split(data, "validation", layout, RefineOptions("sampass"), no_sam, fingerprint, params)
    assert first.voted == again.voted == images and again.generated == 0
    return {
        "vote_original_s": time_votes(preds, masks, "original"),
        "vote_sampass_s": time_votes(preds, masks, "sampass"),
        "revote_total_s": again.seconds,
        "revote_per_image_s": again.seconds / images,
        "cache_bytes_per_image": cache_bytes / images,
        "cache_bytes_per_mask": cache_bytes / (images * n_masks),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2, help="images for SAM generation")
    parser.add_argument("--revote-images", type=int, default=50, help="images of the cached split re-voted")
    parser.add_argument("--masks", type=int, default=100, help="synthetic masks per image")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    args = parser.parse_args()
    console = Console()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench-refine-") as tmp:
        gen = bench_generation(Path(tmp) / "gen", args.images, console)
        rev = bench_revote(Path(tmp) / "revote", args.revote_images, args.masks)

    sam_s = gen["sam_s"]
    table = Table(
        title=f"luss refine: SAM ViT-B generation vs vote (target: vote < {TARGET_RATIO:.0%} of SAM)"
    )
    for name in ("step", "per image", "vs SAM"):
        table.add_column(name, justify="right" if name != "step" else "left")

    def ratio(seconds: float) -> str:
        return f"{100 * seconds / sam_s:.3f} %" if sam_s else "-"

    table.add_row("SAM generation (default params, CPU)", f"{sam_s:.2f} s", "100 %")
    table.add_row(
        f"vote, original, on SAM's masks ({gen['sam_masks']:.0f}/img)",
        f"{1000 * gen['vote_sam_masks_s']:.2f} ms",
        ratio(gen["vote_sam_masks_s"]),
    )
    for mode in ("original", "sampass"):
        seconds = rev[f"vote_{mode}_s"]
        table.add_row(
            f"vote, {mode}, {args.masks} synthetic masks", f"{1000 * seconds:.2f} ms", ratio(seconds)
        )
    table.add_row(
        f"re-vote of a cached split ({args.revote_images} img, incl. I/O)",
        f"{1000 * rev['revote_per_image_s']:.2f} ms",
        ratio(rev["revote_per_image_s"]),
    )
    console.print(table)
    console.print(
        f"re-vote total: {rev['revote_total_s']:.2f} s for {args.revote_images} images; cache "
        f"{rev['cache_bytes_per_image'] / 1024:.1f} KiB/img, {rev['cache_bytes_per_mask']:.0f} B/mask"
    )
    worst = max(gen["vote_sam_masks_s"], rev["vote_original_s"], rev["vote_sampass_s"])
    console.print(
        f"for scale on a GPU: SAM-B default AMG is ~{GPU_SAM_B_S:.2f} s/img (RTX 3090, FastSAM README); "
        f"the worst vote here is {100 * worst / GPU_SAM_B_S:.2f} % of that"
    )
    verdict = "met" if sam_s and worst < TARGET_RATIO * sam_s else "NOT met"
    console.print(f"target vote < {TARGET_RATIO:.0%} of SAM time: {verdict} (worst vote {ratio(worst)})")


if __name__ == "__main__":
    main()
