"""``luss validate-data``: check an ImageNet-S tree and say what to fix."""

from __future__ import annotations

from pathlib import Path

import click

from luss_cli.options import workers_option

SHOWN = 20


@click.command(
    "validate-data",
    context_settings={"max_content_width": 110, "show_default": True},
    epilog="Exit status 0 when there is no error (warnings allowed), 2 (or 1 when embedded) otherwise.",
)
@click.argument("data", type=click.Path(path_type=Path))
@click.option(
    "--split",
    "splits",
    multiple=True,
    type=click.Choice(["train", "validation", "test", "train-semi"]),
    help="Check only these splits (repeatable). Default: train and validation (required), plus test and "
    "train-semi when present.",
)
@click.option(
    "--train-images",
    default="full",
    type=click.Choice(["full", "header", "stat", "none"]),
    help="How hard to check train images: full (decodes every pixel: finds truncated files), header "
    "(opens each header), stat (only missing and empty files, what every stage checks first), none "
    "(only counts). Validation/test images and masks are always decoded.",
)
@workers_option("Processes checking files")
def validate_data(data: Path, splits: tuple[str, ...], train_images: str, workers: int) -> None:
    """Check that DATA is a usable ImageNet-S tree before a long run.

    \b
      luss validate-data data/demo
      luss validate-data /data/ImageNetS50 --workers 16
      luss validate-data /data/ImageNetS50 --train-images header   # faster, misses truncated files
      luss validate-data /data/ImageNetS50 --split validation

    \b
    Checks: split folders (train/, validation/, validation-segmentation/), class folders
    (validation/test classes must be train classes), one mask per image and no mask without image,
    masks at the image's size, RGB with id = R + 256*G in 0..C or 1000, unreadable, truncated and empty
    images and masks, empty class folders, broken symlinks. Warnings (the files still load): CMYK,
    greyscale, RGBA and 16-bit images (converted to RGB), PNG data under a .JPEG name, EXIF-rotated
    JPEGs (luss reads the stored pixels, which the masks match), names with spaces or non-ASCII
    characters, stray files (.DS_Store, Thumbs.db, *.txt; ignored). Decoding runs in --workers
    processes with a progress bar (ImageNet-S50's 64k train images: minutes on a few cores).
    """
    from rich.console import Console
    from rich.table import Table

    from tools.data.validate import validate_dataset
    from tools.errors import DatasetError

    report = validate_dataset(
        data,
        splits=splits or None,
        check_train_images=train_images,
        workers=workers,  # type: ignore[arg-type]
    )
    console = Console(highlight=False, soft_wrap=True)
    table = Table(title=f"{data}  ({report.num_classes} classes)")
    for column in ("split", "classes", "images", "masks"):
        table.add_column(column, justify="left" if column == "split" else "right")
    for split, counts in report.counts.items():
        masks = "-" if counts.masks is None else str(counts.masks)
        table.add_row(split, str(counts.classes), str(counts.images), masks)
    console.print(table)
    _print_list(console, "Warnings", report.warnings, report.warning_count, "yellow")
    _print_list(console, "Errors", report.errors, report.error_count, "red")
    if not report.ok:
        raise DatasetError(
            f"{data}: {report.error_count} error(s), {report.warning_count} warning(s); fix the errors above "
            "(paths are relative to the dataset root) and run validate-data again."
        )
    console.print(
        f"[green]OK[/green]: {data} is a valid ImageNet-S tree ({report.warning_count} warning(s))."
    )


def _print_list(console, title: str, items: list[str], total: int, colour: str) -> None:
    if not total:
        return
    console.print(f"[{colour}]{title} ({total}):[/{colour}]")
    for line in items[:SHOWN]:
        console.print(f"  - {line}", markup=False)
    if total > SHOWN:
        console.print(f"  ... and {total - SHOWN} more")
