"""Two real MPI ranks with different shard sizes give the codes of one process on the whole batch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.jittor]


def test_two_ranks_equal_one_process(tmp_path):
    mpirun = shutil.which("mpirun")
    if mpirun is None:
        pytest.skip("OpenMPI is not installed")
    jt = pytest.importorskip("jittor")
    from models.losses.sinkhorn import sinkhorn_knopp

    cmd = [mpirun, "--oversubscribe", "-np", "2"]
    if os.geteuid() == 0:
        cmd.insert(1, "--allow-run-as-root")
    script = Path(__file__).parent / "mpi" / "sinkhorn_ranks.py"
    env = {**os.environ, "nvcc_path": "", "log_silent": "1", "LUSS_FORCE_CPU": "1"}
    result = subprocess.run(
        [*cmd, sys.executable, str(script), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    records = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [(r["rank"], r["world"]) for r in records] == [(0, 2), (1, 2)]
    assert [r["max"] for r in records] == [1.0, 1.0]  # the emulated all-reduce max saw both ranks
    codes = np.concatenate([np.array(records[0]["codes"]), np.array(records[1]["codes"])])
    scores = np.random.default_rng(0).uniform(-1, 1, size=(12, 5)).astype(np.float32)
    expected = sinkhorn_knopp(jt.array(scores), 0.05, 3).numpy()
    np.testing.assert_allclose(codes, expected, rtol=1e-5, atol=1e-7)
