"""Console lines of the commands that run under ``mpirun``: only rank 0 prints, so N ranks do not
repeat every status line N times. Errors still surface on every rank (they are raised, not echoed)."""

from __future__ import annotations

import click

from tools.engine.distributed import env_world


def echo(message: str, err: bool = False) -> None:
    """``click.echo`` on rank 0 (or without MPI); nothing on the other ranks."""
    if env_world().is_main:
        click.echo(message, err=err)


def echo_err(message: str) -> None:
    """``echo`` to stderr: progress and status lines, so stdout stays for results."""
    echo(message, err=True)
