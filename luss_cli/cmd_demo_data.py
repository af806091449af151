"""``luss demo-data``: write the built-in procedural demo dataset (ImageNet-S layout)."""

from __future__ import annotations

from pathlib import Path

import click

from luss_cli.options import overwrite_option, workers_option
from tools.data.demo_shapes import MAX_CLASSES


@click.command(
    "demo-data",
    context_settings={"max_content_width": 110, "show_default": True},
    epilog="Then: `luss validate-data OUT` checks it, and every command that takes --data can use it.",
)
@click.argument("out", type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--classes",
    default=8,
    type=click.IntRange(1, MAX_CLASSES),
    help="Number of classes. A class is a shape x texture x hue family; hues repeat across classes, so "
    "the shape must be learned.",
)
@click.option("--train-per-class", default=48, type=click.IntRange(min=0), help="Unlabelled train images.")
@click.option(
    "--val-per-class", default=8, type=click.IntRange(min=0), help="Validation images (with masks)."
)
@click.option(
    "--test-per-class",
    default=6,
    type=click.IntRange(min=0),
    help="Test images; unlike real ImageNet-S, their masks are included (test-segmentation/).",
)
@click.option(
    "--semi-per-class",
    default=4,
    type=click.IntRange(min=0),
    help="train-semi images (copies of the first train images, with masks): the labels of the distance "
    "and semi-supervised protocols.",
)
@click.option(
    "--size",
    default=112,
    type=click.IntRange(min=16),
    help="Nominal shorter image side in pixels; each image varies it by +-12% and its aspect in 3/4..4/3.",
)
@click.option("--seed", default=0, type=int, help="Same seed, same bytes (whatever --workers).")
@workers_option("Processes drawing images")
@overwrite_option("Replace OUT if it holds an earlier demo dataset.")
def demo_data(
    out: Path,
    classes: int,
    train_per_class: int,
    val_per_class: int,
    test_per_class: int,
    semi_per_class: int,
    size: int,
    seed: int,
    workers: int,
    overwrite: bool,
) -> None:
    """Write a small synthetic dataset in the exact ImageNet-S layout to OUT.

    \b
      luss demo-data data/demo                      # 8 classes, 288 images, a few seconds
      luss demo-data data/big --classes 50 --train-per-class 200 --size 224

    \b
    Each image shows one object of its class on clutter (about 1 in 4 also shows a smaller object of
    another class). Masks are RGB PNGs, id = R + 256*G: 0 background, 1..C classes (wnids
    n90000001.. in class order), 1000 ignore (a thin border band in about half of them).
    OUT/demo.json describes each class; OUT/.complete is written last.
    """
    from tools.data.demo import DemoSpec, timed_generate

    spec = DemoSpec(
        classes=classes,
        train_per_class=train_per_class,
        val_per_class=val_per_class,
        test_per_class=test_per_class,
        semi_per_class=semi_per_class,
        size=size,
        seed=seed,
    )
    path, seconds = timed_generate(out, spec, overwrite=overwrite, workers=workers)
    click.echo(
        f"Wrote {path}: {spec.classes} classes; train {spec.classes * spec.train_per_class}, "
        f"validation {spec.classes * spec.val_per_class}, test {spec.classes * spec.test_per_class}, "
        f"train-semi {spec.classes * spec.semi_count} (copies) images "
        f"({spec.num_images} in all) in {seconds:.1f} s."
    )
    click.echo(f"Next: luss validate-data {path}")
