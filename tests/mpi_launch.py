"""How the MPI tests launch ``mpirun -np N`` on the CPU (skipped where OpenMPI is not installed)."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from tools.rehearsal.runner import cpu_env

__all__ = ["cpu_env", "mpirun", "run_mpi"]


def mpirun(ranks: int = 2) -> list[str]:
    from tools.errors import LussError
    from tools.rehearsal.runner import mpirun_prefix

    try:
        return mpirun_prefix(ranks)
    except LussError:
        pytest.skip("OpenMPI is not installed (apt-get install openmpi-bin libopenmpi-dev)")


def run_mpi(args: list[str], timeout: float, ranks: int = 2, **env: str) -> subprocess.CompletedProcess:
    """``mpirun -np ranks ARGS``; a hang past ``timeout`` kills the job's process group and fails."""
    cmd = [*mpirun(ranks), *args]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cpu_env(**env),
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()  # mpirun forwards SIGTERM to every rank (they are in their own process groups)
        try:
            out, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        pytest.fail(f"mpirun {' '.join(args)} hung for {timeout} s:\n{out[-3000:]}\n{err[-3000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
