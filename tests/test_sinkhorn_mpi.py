"""Two real MPI ranks with different shard sizes give the codes of one process on the whole batch."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from mpi_launch import run_mpi

pytestmark = [pytest.mark.slow, pytest.mark.jittor]


def test_two_ranks_equal_one_process(tmp_path):
    jt = pytest.importorskip("jittor")
    from models.losses.sinkhorn import sinkhorn_knopp

    script = Path(__file__).parent / "mpi" / "sinkhorn_ranks.py"
    result = run_mpi([sys.executable, str(script), str(tmp_path)], timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    records = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [(r["rank"], r["world"]) for r in records] == [(0, 2), (1, 2)]
    assert [r["max"] for r in records] == [1.0, 1.0]  # the emulated all-reduce max saw both ranks
    codes = np.concatenate([np.array(records[0]["codes"]), np.array(records[1]["codes"])])
    scores = np.random.default_rng(0).uniform(-1, 1, size=(12, 5)).astype(np.float32)
    expected = sinkhorn_knopp(jt.array(scores), 0.05, 3).numpy()
    np.testing.assert_allclose(codes, expected, rtol=1e-5, atol=1e-7)
