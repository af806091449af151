"""Click options shared by the training commands, so every stage spells and documents them alike."""

from __future__ import annotations

from collections.abc import Callable

import click


def preset_option(func: Callable) -> Callable:
    from tools.config.loader import preset_names

    return click.option(
        "--preset",
        default="demo",
        show_default=True,
        help=f"Config preset ({', '.join(preset_names())}) or the path of a YAML file.",
    )(func)


def overrides_option(example: str) -> Callable[[Callable], Callable]:
    """``--set KEY=VALUE`` (repeatable) into the ``overrides`` argument; ``example`` shows typical keys."""

    def decorate(func: Callable) -> Callable:
        return click.option(
            "--set",
            "overrides",
            multiple=True,
            metavar="KEY=VALUE",
            help=f"Override a config value, repeatable, e.g. {example}.",
        )(func)

    return decorate
