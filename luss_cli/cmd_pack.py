"""``luss pack``: build the submission zip, or check one (``--check``)."""

from __future__ import annotations

from pathlib import Path

import click

from luss_cli.options import data_option, workers_option
from tools.packing.method_info import MethodInfo
from tools.packing.protocols import PROTOCOLS

_DEFAULT = MethodInfo()


@click.command(
    "pack",
    context_settings={"max_content_width": 110},
    epilog="Nothing is written unless every check passes; each problem names its file.",
)
@click.argument("pred", required=False, type=click.Path(path_type=Path, file_okay=False))
@data_option("ImageNet-S root; its test/<wnid>/*.JPEG list says which PNGs must be there, and at what size.")
@click.option(
    "--match",
    "match_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="match.json from `luss predict --split validation` (Hungarian matching on validation).",
)
@click.option(
    "--protocol",
    default="fully-unsupervised",
    show_default=True,
    type=click.Choice(list(PROTOCOLS)),
    help="The leaderboard: sets method.txt's 'Training scheme' line and refuses predictions it forbids.",
)
@click.option("--out", "out_zip", type=click.Path(path_type=Path, dir_okay=False), help="The zip to write.")
@click.option(
    "--check",
    "check_zip",
    metavar="ZIP",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Check an existing zip (any zip: it is read in memory, never extracted) instead of building one.",
)
@click.option(
    "--method-name", default=_DEFAULT.method_name, show_default=True, help="method.txt: Method name."
)
@click.option("--training-data", default=_DEFAULT.training_data, show_default=True)
@click.option(
    "--training-scheme",
    default=None,
    help="method.txt 'Training scheme'; set by --protocol, free text only with --protocol free.",
)
@click.option("--networks", default=_DEFAULT.networks, show_default=True)
@click.option("--link", default=_DEFAULT.link, show_default=True, help="Paper/Project link.")
@click.option("--description", default=None, help="Method description (one line); default: the protocol's.")
@workers_option("Processes checking PNGs")
def pack(
    pred: Path | None,
    data: Path,
    match_path: Path | None,
    protocol: str,
    out_zip: Path | None,
    check_zip: Path | None,
    method_name: str,
    training_data: str,
    training_scheme: str | None,
    networks: str,
    link: str,
    description: str | None,
    workers: int,
) -> None:
    """Build (or check) the submission zip for the ImageNet-S server and the Jittor challenge.

    \b
      luss pack PRED --data D --match match.json --out submissions/NAME.zip
      luss pack --check submissions/NAME.zip --data D [--protocol P]

    PRED holds one prediction per test image, PRED/<wnid>/<stem>.png, as written
    by `luss predict --split test`: an 8-bit RGB PNG at the image's own size,
    id = R + 256*G, B = 0, ids in 0..C (raw cluster ids; 0 = background).

    --protocol picks the ImageNet-S leaderboard (each deletes submissions of
    another): fully-unsupervised (default; needs --match), distance (`luss
    distance`), semi (`luss finetune --labels train-semi`), free. It writes the
    matching 'Training scheme' line of method.txt and refuses predictions the
    protocol forbids: made under another protocol (PRED/protocol.json, or
    RUN/config.yaml), or with classes read from folder names. Under distance
    and semi the ids are classes already: match.json is the identity.

    \b
    match.json maps every predicted id to a class, one-to-one:
    {"1": 34, ..., "C": 7, "0": 0}. It comes from the validation split:
    `luss predict --split validation` matches clusters to the validation ground
    truth (Hungarian) and writes it; the server applies it to the test ids.

    \b
    The zip has no enclosing folder:
      n01443537/                      one folder per test class
      n01443537/ILSVRC2012_val_*.png  one PNG per test image
      match.json                      the matching above
      method.txt                      6 lines: Method name, Training data,
                                      Training scheme, Networks,
                                      Paper/Project link, Method description
    """
    from rich.console import Console
    from rich.markup import escape

    from tools.data.imagenet_s import ImageNetS
    from tools.errors import SubmissionError
    from tools.packing.pack import check_submission_zip, pack_submission
    from tools.packing.rules import summarize

    console = Console(soft_wrap=True)  # never break a path over two lines
    dataset = ImageNetS(data)
    if check_zip is not None:
        if pred is not None or match_path is not None or out_zip is not None:
            raise click.UsageError("--check takes only ZIP and --data (no PRED, --match or --out).")
        source = click.get_current_context().get_parameter_source("protocol")
        chosen_protocol = None if source == click.core.ParameterSource.DEFAULT else protocol
        problems = check_submission_zip(check_zip, dataset, workers, progress=True, protocol=chosen_protocol)
        if problems:
            raise SubmissionError(
                f"{check_zip}: would be refused, {len(problems)} problems ({summarize(problems)}).", problems
            )
        n_images = len(dataset.samples("test"))
        console.print(
            f"[green]OK[/green] {escape(str(check_zip))}: {n_images} test PNGs, "
            f"{dataset.num_classes} classes, match.json and method.txt all pass."
        )
        return

    chosen = PROTOCOLS[protocol]
    needed = (("PRED", pred), ("--out", out_zip)) + (
        () if chosen.ids_are_classes else (("--match", match_path),)
    )
    missing = [name for name, value in needed if value is None]
    if missing:
        raise click.UsageError(f"missing {', '.join(missing)} (or use --check ZIP to check a zip).")
    if training_scheme is not None and protocol != "free" and training_scheme != chosen.training_scheme:
        raise click.UsageError(
            f"--protocol {protocol} writes 'Training scheme: {chosen.training_scheme}'; leave out "
            "--training-scheme (free text is for --protocol free)."
        )
    assert pred is not None and out_zip is not None
    method = MethodInfo(
        method_name=method_name,
        training_data=training_data,
        training_scheme=training_scheme or chosen.training_scheme,
        networks=networks,
        link=link,
        description=description or chosen.description,
    )
    result = pack_submission(
        pred, dataset, match_path, out_zip, method, workers, progress=True, protocol=protocol
    )
    console.print(f"[green]Packed[/green] {escape(str(result.path))}")
    console.print(f"  images   {result.num_images} PNGs ({result.num_classes} classes)")
    console.print(f"  size     {_size(result.size_bytes)} (PNGs {_size(result.png_bytes)})")
    again = f"luss pack --check {result.path} --data {data}"
    console.print(f"  protocol {protocol}: submit to {chosen.leaderboard}")
    console.print(f"  check    passed; re-check any time: {escape(again)}")


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:.2f} MB" if n_bytes >= 100_000 else f"{n_bytes / 1e3:.1f} kB"
