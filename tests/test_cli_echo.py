"""Under mpirun only rank 0 prints the commands' status lines."""

from __future__ import annotations

import pytest

from luss_cli.echo import echo, echo_err


@pytest.mark.parametrize("variable", ["OMPI_COMM_WORLD_RANK", "PMI_RANK"])
def test_only_rank_zero_prints(monkeypatch, capsys, variable):
    monkeypatch.delenv("OMPI_COMM_WORLD_RANK", raising=False)
    monkeypatch.delenv("PMI_RANK", raising=False)
    monkeypatch.setenv(variable, "1")
    echo("from rank 1")
    echo_err("from rank 1")
    assert capsys.readouterr() == ("", "")
    monkeypatch.setenv(variable, "0")
    echo("result line")
    echo_err("status line")
    out, err = capsys.readouterr()
    assert out == "result line\n" and err == "status line\n"


def test_prints_without_mpi(monkeypatch, capsys):
    monkeypatch.delenv("OMPI_COMM_WORLD_RANK", raising=False)
    monkeypatch.delenv("PMI_RANK", raising=False)
    echo("plain run")
    assert capsys.readouterr().out == "plain run\n"
