"""Click options shared by the commands, so every command spells and documents them alike.

Each takes the command's own help text where the meaning differs (what RUN must hold, what a resume
continues); ``--workers`` always says the one rule of :mod:`tools.workers`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from tools.workers import AUTO_HELP

Decorator = Callable[[Callable], Callable]
SPLITS = ("validation", "test")


def preset_option(func: Callable) -> Callable:
    from tools.config.loader import preset_names

    return click.option(
        "--preset",
        default=None,
        help=f"Config preset ({', '.join(preset_names())}) or the path of a YAML file, for a NEW run "
        "(default: demo). A run keeps the config its first command wrote (RUN/config.yaml): later commands "
        "read it, and a different --preset is an error.",
    )(func)


def overrides_option(example: str) -> Callable[[Callable], Callable]:
    """``--set KEY=VALUE`` (repeatable) into the ``overrides`` argument; ``example`` shows typical keys."""

    def decorate(func: Callable) -> Callable:
        return click.option(
            "--set",
            "overrides",
            multiple=True,
            metavar="KEY=VALUE",
            help=f"Override a config value, repeatable, e.g. {example}. On an existing run only this "
            "command's own sections may change; the change is recorded in RUN/config-history.jsonl.",
        )(func)

    return decorate


def path_override(key: str, path) -> str:
    """``key=<path>`` as a ``--set`` string whose value YAML reads back as that exact string."""
    import json

    return f"{key}={json.dumps(str(path))}"


def run_option(help: str, exists: bool = False) -> Decorator:
    """``--run RUN`` (required) into ``run_dir``; ``exists``: the folder must be there already."""
    return click.option(
        "--run",
        "run_dir",
        required=True,
        metavar="RUN",
        type=click.Path(path_type=Path, exists=exists, file_okay=False),
        help=help,
    )


def pretrain_from_option(help: str) -> Decorator:
    """``--pretrain-from RUN0``: an existing run whose Stage-1 backbone to start from instead of RUN's."""
    return click.option(
        "--pretrain-from",
        metavar="RUN0",
        type=click.Path(path_type=Path, exists=True, file_okay=False),
        help=help,
    )


def data_option(help: str) -> Decorator:
    """``--data DATA`` (required): an existing ImageNet-S root; ``help`` says what the command reads."""
    return click.option(
        "--data",
        required=True,
        metavar="DATA",
        type=click.Path(path_type=Path, exists=True, file_okay=False),
        help=help,
    )


def split_option(help: str | None = None) -> Decorator:
    """``--split validation|test`` (default validation)."""
    return click.option(
        "--split", type=click.Choice(SPLITS), default="validation", show_default=True, help=help
    )


def workers_option(what: str) -> Decorator:
    """``--workers N`` (default 0 = auto); ``what`` names the processes, e.g. "Scoring processes"."""
    return click.option(
        "--workers",
        default=0,
        show_default=True,
        type=click.IntRange(min=0),
        help=f"{what}; {AUTO_HELP}.",
    )


def resume_option(help: str) -> Decorator:
    """``--resume``: continue an interrupted training; ``help`` says from where."""
    return click.option("--resume", is_flag=True, help=help)


def overwrite_option(help: str) -> Decorator:
    """``--overwrite``: redo what exists; ``help`` says what is redone or replaced."""
    return click.option("--overwrite", is_flag=True, help=help)


def no_score_option(func: Callable) -> Callable:
    """``--no-score``: on validation, no match.json and no score table (predict, refine)."""
    return click.option(
        "--no-score", is_flag=True, help="On validation, skip match.json and the score table."
    )(func)
