"""The ``luss`` command group. Subcommands are imported lazily so ``luss --help`` is instant and
a command that does not train never imports Jittor or PyTorch."""

from __future__ import annotations

import importlib
import sys

import click

from tools.errors import LussError
from tools.runtime import configure_runtime

# name -> "module:attribute"; order is the pipeline order shown in --help.
COMMANDS = {
    "demo-data": ("luss_cli.cmd_demo_data:demo_data", "Write the built-in procedural demo dataset."),
    "validate-data": ("luss_cli.cmd_validate_data:validate_data", "Check an ImageNet-S tree."),
    "pretrain": ("luss_cli.cmd_pretrain:pretrain", "Stage 1: SwAV + P2P self-supervised pretraining."),
    "cluster": ("luss_cli.cmd_cluster:cluster", "Stage 2: pixel attention, k-means, pseudo-labels."),
    "finetune": ("luss_cli.cmd_finetune:finetune", "Stage 3: train the segmenter on the pseudo-labels."),
    "predict": ("luss_cli.cmd_predict:predict", "Stage 4: label PNGs for a split (+ match.json, scores)."),
    "score": ("luss_cli.cmd_score:score", "Score predictions like the official evaluator."),
    "refine": ("luss_cli.cmd_refine:refine", "SAM semantic voting on predictions."),
    "pack": ("luss_cli.cmd_pack:pack", "Build or check a submission zip."),
    "report": ("luss_cli.cmd_report:report", "Write RUN/report.html (scores, ladder, curves, overlays)."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module_name, attr = COMMANDS[name][0].split(":")
        return getattr(importlib.import_module(module_name), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_text) for name, (_, help_text) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Show Jittor's own logs and full tracebacks.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """luss: large-scale unsupervised semantic segmentation on ImageNet-S.

    \b
    Pipeline:  pretrain -> cluster -> finetune -> predict -> refine -> pack
    Scoring:   luss score PRED --data D
    Quick try: luss demo-data data/demo && luss validate-data data/demo
    """
    ctx.ensure_object(dict)
    ctx.obj["verbose"] = verbose
    configure_runtime(verbose=verbose)


def main() -> None:
    try:
        rc = cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except LussError as exc:
        click.secho(f"Error: {exc}", fg="red", err=True)
        problems = getattr(exc, "problems", None) or []
        for line in problems[:20]:
            click.echo(f"  - {line}", err=True)
        if len(problems) > 20:
            click.echo(f"  ... and {len(problems) - 20} more", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    sys.exit(rc if isinstance(rc, int) else 0)
