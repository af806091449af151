"""Benchmark Stage 2 (`luss cluster`): embedding extraction, pseudo-label writing, and faiss k-means.

    .venv/bin/python bench/bench_cluster.py [--images 32] [--points 64000] [--dim 512] [--clusters 50]

1. *Embeddings*: the demo preset's pixel-attention network (ResNet-18 + fbg, random weights: the cost
   does not depend on them) on ImageNet-size synthetic JPEGs with the preset's resize and centre crop
   (shorter side 256, crop 224, as LUSS-50), images per second.
2. *Pseudo-labels*: dense cosine labels + attention at full resolution for each image and the label
   PNG written, images per second (the `labels` sub-step's per-image work).
3. *K-means*: `tools.clustering.kmeans` (faiss, CPU) on ``--points`` random unit vectors of ``--dim``
   (64k x 512 is ImageNet-S50's train set at ResNet-18 width) with K = ``--clusters``, niter 20, nredo 1;
   the LUSS-50 recipe's nredo 30 costs about 30 times this.
Prints a table; never fails on time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--points", type=int, default=64000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--clusters", type=int, default=50)
    args = parser.parse_args()

    from tools.runtime import configure_runtime

    configure_runtime()
    # The same synthetic photos as bench_data.py (bench/ is on sys.path when run as a script).
    from bench_data import write_images

    from tools.clustering.embed import dense_labels, embed_samples
    from tools.clustering.kmeans import kmeans
    from tools.config.loader import load_config
    from tools.data.imagenet_s import Sample
    from tools.data.images import load_rgb_image
    from tools.data.label_codec import write_label_png
    from tools.networks import build_network

    config = load_config("demo")
    net = build_network(config, "attention_features")
    net.eval()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(p) for p in write_images(Path(tmp), args.images)]
        samples = [Sample("train", "n00000001", p.stem, p) for p in paths]
        embed_samples(net, samples[:2], 256, 224, "warm-up")  # Jittor compiles its kernels once
        start = time.perf_counter()
        embeddings, _ = embed_samples(net, samples, 256, 224, "embeddings")
        seconds = time.perf_counter() - start
        rows.append(("embeddings (256 / crop 224)", seconds, f"{len(samples) / seconds:.1f} img/s"))

        centroids = np.random.default_rng(0).normal(size=(8, embeddings.shape[1])).astype(np.float32)
        centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
        out = Path(tmp) / "labels"
        dense_labels(net, load_rgb_image(paths[0]), centroids, 256)  # warm-up
        start = time.perf_counter()
        for i, path in enumerate(paths):
            labels, attention = dense_labels(net, load_rgb_image(path), centroids, 256)
            write_label_png(out / f"{i:04d}.png", np.where(attention >= 0.5, labels, 0))
        seconds = time.perf_counter() - start
        rows.append(("pseudo-labels (dense + PNG)", seconds, f"{len(paths) / seconds:.1f} img/s"))

    points = np.random.default_rng(1).normal(size=(args.points, args.dim)).astype(np.float32)
    start = time.perf_counter()
    kmeans(points, args.clusters, niter=20, nredo=1, seed=31)
    seconds = time.perf_counter() - start
    rows.append((f"k-means {args.points} x {args.dim}, K={args.clusters}, nredo 1", seconds, "-"))

    table = Table(title="luss cluster on the CPU (demo network: ResNet-18 + fbg)")
    for column in ("step", "seconds", "throughput"):
        table.add_column(column, justify="left" if column == "step" else "right")
    for name, seconds, rate in rows:
        table.add_row(name, f"{seconds:.2f}", rate)
    Console().print(table)


if __name__ == "__main__":
    main()
