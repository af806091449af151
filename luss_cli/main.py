"""The ``luss`` command group. Subcommands are imported lazily so ``luss --help`` is instant and
a command that does not train never imports Jittor or PyTorch."""

from __future__ import annotations

import importlib
import os
import sys

import click

from tools.errors import LussError
from tools.runtime import configure_runtime

# name -> "module:attribute"; order is the pipeline order shown in --help.
COMMANDS = {
    "demo-data": ("luss_cli.cmd_demo_data:demo_data", "Write the built-in procedural demo dataset."),
    "prepare": ("luss_cli.cmd_prepare:prepare", "ILSVRC2012 + annotation zip -> ImageNet-S tree."),
    "validate-data": ("luss_cli.cmd_validate_data:validate_data", "Check an ImageNet-S tree."),
    "pretrain": ("luss_cli.cmd_pretrain:pretrain", "Stage 1: SwAV + P2P self-supervised pretraining."),
    "cluster": ("luss_cli.cmd_cluster:cluster", "Stage 2: pixel attention, k-means, pseudo-labels."),
    "finetune": ("luss_cli.cmd_finetune:finetune", "Stage 3: train the segmenter on the pseudo-labels."),
    "predict": ("luss_cli.cmd_predict:predict", "Stage 4: label PNGs for a split (+ match.json, scores)."),
    "distance": (
        "luss_cli.cmd_distance:distance",
        "Distance-matching protocol: train-semi class embeddings.",
    ),
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
    """Run the command; under mpirun an error on one rank ends the whole job (see :func:`_end_job`)."""
    try:
        code = _run()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException as exc:  # noqa: BLE001 - anything else: a traceback, and the job must still end
        if not _in_mpi_job():
            raise
        import traceback

        traceback.print_exc()
        _end_job(1, f"{type(exc).__name__}: {exc}")
    if code and _in_mpi_job():
        _end_job(code, "see the error above")
    sys.exit(code)


def _run() -> int:
    """The command's exit status; user errors are printed without a traceback."""
    try:
        rc = cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except LussError as exc:
        click.secho(f"Error{_rank_tag()}: {exc}", fg="red", err=True)
        problems = getattr(exc, "problems", None) or []
        for line in problems[:20]:
            click.echo(f"  - {line}", err=True)
        if len(problems) > 20:
            click.echo(f"  ... and {len(problems) - 20} more", err=True)
        return 2
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return 130
    return rc if isinstance(rc, int) else 0


def _in_mpi_job() -> bool:
    from tools.engine.distributed import env_world

    return env_world().size > 1


def _rank_tag() -> str:
    from tools.engine.distributed import env_world

    world = env_world()
    return f" (rank {world.rank}/{world.size})" if world.size > 1 else ""


def _end_job(code: int, reason: str) -> None:
    """Leave at once without MPI_Finalize, so OpenMPI's mpirun ends every rank with this status.

    ``sys.exit`` would run Jittor's exit handlers, whose ``MPI_Finalize`` waits for the other ranks,
    which wait at their next barrier for this one: the job would hang. A rank that exits without
    finalising makes mpirun abort the job within seconds (measured: 2 ranks, about 3 s).
    """
    click.echo(f"luss{_rank_tag()}: ending the MPI job with status {code} ({reason}).", err=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
