"""Two MPI ranks train with the shared engine: parameters stay identical, only rank 0 checkpoints."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from mpi_launch import run_mpi

pytestmark = pytest.mark.slow


def test_two_ranks_keep_identical_parameters_and_only_rank0_writes(tmp_path):
    script = Path(__file__).parent / "mpi" / "train_tiny.py"
    result = run_mpi([sys.executable, str(script), str(tmp_path / "run")], timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    digests = dict(re.findall(r"RANK (\d) DIGEST ([0-9a-f]+)", result.stdout))
    assert set(digests) == {"0", "1"}
    assert digests["0"] == digests["1"]
    files = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    # rank 0 owns model/optimiser checkpoints; rank 1 only keeps its own task state (e.g. its queue),
    # beside latest.pkl and each snapshot (a resume may fall back to one)
    assert files == [
        "ckp-0001-rank1.pkl",
        "ckp-0001.pkl",
        "ckp-0002-rank1.pkl",
        "ckp-0002.pkl",
        "final.pkl",
        "latest-rank1.pkl",
        "latest.pkl",
    ]
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) > 0
