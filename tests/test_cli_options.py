"""The shared Click options (luss_cli/options.py) say the same thing in every command."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from luss_cli.main import COMMANDS, cli
from tools.workers import AUTO_HELP

# `luss prepare --workers` counts threads copying files (default 4), not the process rule.
THREAD_WORKERS = {"prepare"}


def _options(name: str) -> dict[str, click.Option]:
    command = cli.get_command(click.Context(cli), name)
    return {p.name: p for p in command.params if isinstance(p, click.Option)}


WITH_WORKERS = [n for n in COMMANDS if n not in THREAD_WORKERS and "workers" in _options(n)]


def test_the_commands_that_start_processes_have_workers():
    expected = {"demo-data", "validate-data", "predict", "distance", "score", "refine", "pack", "report"}
    assert set(WITH_WORKERS) == expected


@pytest.mark.parametrize("name", WITH_WORKERS)
def test_every_workers_option_states_the_one_rule(name):
    workers = _options(name)["workers"]
    assert AUTO_HELP in workers.help and workers.default == 0


@pytest.mark.parametrize("name", list(COMMANDS))
def test_run_data_and_split_are_spelled_alike(name):
    options = _options(name)
    if "run_dir" in options:
        assert options["run_dir"].opts == ["--run"] and options["run_dir"].metavar == "RUN"
        assert options["run_dir"].required and options["run_dir"].help
    if "data" in options:
        assert options["data"].metavar == "DATA" and options["data"].required
    split = options.get("split")
    if split is not None and not split.multiple:  # validate-data --split picks several splits
        assert list(split.type.choices) == ["validation", "test"] and split.default == "validation"


def test_help_still_teaches_what_run_must_hold():
    result = CliRunner().invoke(cli, ["predict", "--help"], terminal_width=110)
    assert result.exit_code == 0
    for needle in ("--run RUN", "RUN/finetune/checkpoints/final.pkl", "--data DATA", "--no-score", AUTO_HELP):
        assert needle in " ".join(result.output.split()), needle
