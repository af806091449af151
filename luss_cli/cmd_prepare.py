"""``luss prepare``: build the ImageNet-S tree from ILSVRC2012 and the annotation zip."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(
    "prepare",
    context_settings={"max_content_width": 110, "show_default": True},
    epilog="Interrupted? Run the same command again: finished files are kept, the rest is written.",
)
@click.option(
    "--imagenet",
    required=True,
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    help="ILSVRC2012 folder holding train/<wnid>/*.JPEG and val/ (flat, as unpacked, or in wnid folders).",
)
@click.option(
    "--annotations",
    required=True,
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="The annotation zip you downloaded, e.g. ImageNetS50-a0fe9d82231f9bc4787ee76e304dfa51.zip.",
)
@click.option("--classes", "benchmark", required=True, type=click.Choice(["50", "300", "919"]))
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Where ImageNetS<C>/ is created (or that folder itself).",
)
@click.option(
    "--copy",
    is_flag=True,
    help="Copy train images instead of symlinking the class folders (needs the space).",
)
@click.option("--workers", default=4, type=click.IntRange(min=1), help="Threads copying files.")
@click.option(
    "--train-images",
    default="header",
    type=click.Choice(["header", "full", "none"]),
    help="How the final validate-data checks train images (as `luss validate-data --train-images`).",
)
def prepare(
    imagenet: Path, annotations: Path, benchmark: str, out: Path, copy: bool, workers: int, train_images: str
) -> None:
    """Build the exact ImageNet-S tree from your ILSVRC2012 copy; nothing is downloaded.

    \b
      luss prepare --imagenet /data/ILSVRC2012 --classes 50 --out /data \\
          --annotations ~/Downloads/ImageNetS50-a0fe9d82231f9bc4787ee76e304dfa51.zip
      luss validate-data /data/ImageNetS50     # already run at the end of prepare

    \b
    Writes OUT/ImageNetS<C>/:
      train/<wnid>              symlink to ILSVRC2012 train/<wnid> (--copy: copies); the
                                five classes S919 merges get per-file links from both
      train-full                S919, symlink mode: link to the whole ILSVRC2012 train/
      validation/, test/        val images copied into the folders the official lists say
                                (ImageNet-S relabels 13-18 % of them)
      train-semi/               the 10 labelled train images per class (copied)
      validation-segmentation/, train-semi-segmentation/   masks from the annotation zip

    The split lists are the official ones (LUSSeg/ImageNet-S data/, shipped with luss). The zip
    may hold ImageNetS<C>/validation-segmentation/... or validation-segmentation/... at its root;
    it must be the zip of --classes and hold every listed mask. Every missing source is listed
    before anything is written, and the disk space is checked first.
    """
    from tools.prepare.prepare import prepare_imagenet_s

    result = prepare_imagenet_s(
        imagenet, annotations, out, int(benchmark), copy, workers=workers, train_images=train_images
    )
    click.echo(
        f"Prepared {result.root}: {result.entries} entries ({result.written} written now, "
        f"{result.bytes_written / 1e6:.1f} MB) in {result.seconds:.1f} s; validate-data: OK "
        f"({result.report.warning_count if result.report else 0} warning(s))."
    )
    preset = {"50": "luss50-pass", "300": "luss300", "919": "luss919"}[benchmark]
    click.echo(f"Next: luss pretrain --preset {preset} --data {result.root}")
