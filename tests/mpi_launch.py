"""How the MPI tests launch ``mpirun -np N`` on the CPU (skipped where OpenMPI is not installed)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

LUSS = Path(__file__).resolve().parents[1]


def mpirun(ranks: int = 2) -> list[str]:
    from tools.errors import LussError
    from tools.rehearsal.runner import mpirun_prefix

    try:
        return mpirun_prefix(ranks)
    except LussError:
        pytest.skip("OpenMPI is not installed (apt-get install openmpi-bin libopenmpi-dev)")


def cpu_env(**extra: str) -> dict[str, str]:
    """The CPU environment for every rank, with this checkout first on the path."""
    path = os.pathsep.join(p for p in (str(LUSS), os.environ.get("PYTHONPATH", "")) if p)
    return {
        **os.environ,
        "nvcc_path": "",
        "log_silent": "1",
        "LUSS_FORCE_CPU": "1",
        "PYTHONPATH": path,
        **extra,
    }


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
