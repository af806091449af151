"""Click options shared by the training commands, so every stage spells and documents them alike."""

from __future__ import annotations

from collections.abc import Callable

import click


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
