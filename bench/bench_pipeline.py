"""Benchmark the whole demo pipeline: per-stage time and throughput, and the validation-mIoU ablation.

    .venv/bin/python bench/bench_pipeline.py [--run bench/out/demo-run] [--data data/demo] [--fresh]

Runs pretrain -> cluster -> finetune -> predict (validation) on the demo preset (the demo dataset is
generated if absent), timing each stage, then prints one table with the ablation of `make submission`
on the demo: pseudo-labels alone (the cluster stage's validation labels at the chosen t), + finetune
(predict), + refine (SAM voting: the line appears once RUN/refine/validation exists, i.e. after
`luss refine --run RUN --data D --split validation --sam-checkpoint sam_vit_b_01ec64.pth`). A finished
stage is reused (its time shows '-'); --fresh trains from scratch. Never fails on time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("bench/out/demo-run"))
    parser.add_argument("--data", type=Path, default=Path("data/demo"))
    parser.add_argument("--fresh", action="store_true", help="Delete --run first and train from scratch.")
    args = parser.parse_args()

    from tools.runtime import configure_runtime

    configure_runtime()
    from tools.config.loader import load_config
    from tools.data.demo import generate_demo_dataset
    from tools.data.imagenet_s import ImageNetS
    from tools.evaluation import score_predictions
    from tools.stages.cluster import run_cluster
    from tools.stages.finetune import run_finetune
    from tools.stages.predict import run_predict
    from tools.stages.pretrain import run_pretrain

    if not (args.data / ".complete").is_file():
        generate_demo_dataset(args.data, progress=False)
    if args.fresh and args.run.exists():
        shutil.rmtree(args.run)
    config = load_config("demo")
    quiet = lambda message: None  # noqa: E731
    train_images = len(ImageNetS(args.data).samples("train"))
    val_images = len(ImageNetS(args.data).samples("validation"))

    times: dict[str, tuple[float | None, int]] = {}

    def timed(name: str, images: int, done: Path, call) -> None:
        already = done.exists()
        start = time.perf_counter()
        call()
        times[name] = (None if already else time.perf_counter() - start, images)

    run = args.run
    timed(
        "pretrain",
        train_images,
        run / "pretrain" / ".done",
        lambda: run_pretrain(config, args.data, run, say=quiet),
    )
    timed(
        "cluster",
        train_images,
        run / "cluster" / ".done",
        lambda: run_cluster(config, args.data, run, say=quiet),
    )
    timed(
        "finetune",
        train_images,
        run / "finetune" / ".done",
        lambda: run_finetune(config, args.data, run, say=quiet),
    )
    outcome_holder = {}

    def predict() -> None:
        outcome_holder["v"] = run_predict(
            config.predict, args.data, run, "validation", overwrite=True, progress=False, say=quiet
        )

    timed("predict validation", val_images, run / "never", predict)

    report = json.loads((run / "cluster" / "report.json").read_text())
    ablation = [
        (f"pseudo-labels (cluster, t = {report['threshold']:.2f})", report.get("validation_miou"), None)
    ]
    predicted = outcome_holder["v"].score
    ablation.append(("+ finetune (predict)", predicted.miou if predicted else None, predicted))
    refined = run / "refine" / "validation" / "match.json"
    if refined.is_file():
        result = score_predictions(
            run / "refine" / "validation", args.data, "validation", workers=0, progress=False
        )
        ablation.append(("+ refine (SAM voting)", result.miou, result))

    stages = Table(title=f"demo pipeline stages ({train_images} train, {val_images} validation images, CPU)")
    for column in ("stage", "seconds", "img/s"):
        stages.add_column(column, justify="left" if column == "stage" else "right")
    for name, (seconds, images) in times.items():
        rate = "-" if not seconds else f"{images / seconds:.1f}"
        stages.add_row(name, "-" if seconds is None else f"{seconds:.1f}", rate)
    scores = Table(title="demo ablation: validation mIoU (image-level Hungarian)")
    for column in ("prediction", "mIoU", "Acc"):
        scores.add_column(column, justify="left" if column == "prediction" else "right")
    for name, miou, result in ablation:
        scores.add_row(
            name, "-" if miou is None else f"{miou:.2f}", "-" if result is None else f"{result.acc:.2f}"
        )
    console = Console()
    console.print(stages)
    console.print(scores)
    console.print(
        f"cluster: accuracy {report.get('cluster_accuracy', 0):.3f}, NMI {report.get('nmi', 0):.3f}"
    )


if __name__ == "__main__":
    main()
