"""Benchmark `luss predict`: images per second on demo-size images, by head, input size and flip TTA.

    LUSS_FORCE_CPU=1 .venv/bin/python bench/bench_predict.py [--images 16] [--short-side 112 256]

Writes a small procedural demo dataset (test split, ~112 px images) into a temporary directory, builds
an untrained ResNet-18 segmenter (timing does not depend on the weights) and times
:func:`tools.stages.predict.run_predict` writing every PNG, after one warm-up image (Jittor compiles
its kernels on first use, per input shape: demo images vary in shape, so a first run is dominated by
compilation; run it twice and read the second table). Prints a table; never fails on time.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tools.runtime import configure_runtime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16, help="test images (split over 8 classes)")
    parser.add_argument("--short-side", type=int, nargs="+", default=[112, 256])
    parser.add_argument("--heads", nargs="+", default=["progressive", "last_layer"])
    args = parser.parse_args()
    configure_runtime()

    import jittor as jt

    from tools.config.loader import load_config
    from tools.config.schema import PredictConfig
    from tools.data.demo import DemoSpec, generate_demo_dataset
    from tools.engine.distributed import World
    from tools.networks import build_network
    from tools.stages.predict import run_predict

    per_class = max(1, args.images // 8)
    spec = DemoSpec(classes=8, train_per_class=1, val_per_class=0, test_per_class=per_class, size=112)
    table = Table(title=f"luss predict, {8 * per_class} demo images (~112 px), ResNet-18, batch 1")
    for column in ("head", "short side", "flip TTA", "img/s", "ms/img"):
        table.add_column(column, justify="right")
    with tempfile.TemporaryDirectory() as tmp:
        data = generate_demo_dataset(Path(tmp) / "demo", spec, progress=False)
        for head in args.heads:
            jt.set_global_seed(0)
            net = build_network(load_config("demo", [f"finetune.head={head}"]), "segmenter", 8)
            net.eval()
            for short_side in args.short_side:
                for flip in (False, True):
                    config = PredictConfig(short_side=short_side, flip_tta=flip)
                    run = Path(tmp) / f"run-{head}-{short_side}-{flip}"
                    common = dict(world=World(0, 1), progress=False, segmenter=net, say=lambda s: None)
                    run_predict(config, data, run, "test", limit=1, **common)  # warm-up: kernel compilation
                    summary = run_predict(config, data, run, "test", **common).summary
                    rate = summary.images_per_second
                    table.add_row(
                        head, str(short_side), "yes" if flip else "no", f"{rate:.1f}", f"{1000 / rate:.0f}"
                    )
    Console().print(table)


if __name__ == "__main__":
    main()
