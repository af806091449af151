"""Run under ``mpirun -np 2``: each rank computes Sinkhorn codes of its half of one batch via MPI.

Each rank writes ``rank<r>.json`` into the folder given as the first argument (files, not stdout:
two ranks' output lines can interleave on a cold Jittor cache), so the test can compare with one
process on the whole batch.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from tools.runtime import configure_runtime


def main() -> None:
    configure_runtime()
    import jittor as jt

    from models.losses.collectives import mpi_all_reduce
    from models.losses.sinkhorn import sinkhorn_knopp

    scores = np.random.default_rng(0).uniform(-1, 1, size=(12, 5)).astype(np.float32)
    rank, world = int(jt.rank), int(jt.world_size)
    # Different shard sizes per rank (5 and 7 rows) exercise the all-reduced batch total.
    shard = scores[:5] if rank == 0 else scores[5:]
    codes = sinkhorn_knopp(jt.array(shard), 0.05, 3, all_reduce=mpi_all_reduce).numpy()
    peak = mpi_all_reduce(jt.array([float(rank)]), "max").item()
    record = {"rank": rank, "world": world, "max": peak, "codes": codes.tolist()}
    (Path(sys.argv[1]) / f"rank{rank}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main()
