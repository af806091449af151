"""Run under ``mpirun -np 2``: ``run_predict`` on validation with rank 1 slower than rank 0.

Arguments: RUN DATA OUT. Each rank writes ``OUT/rank<r>.json`` saying whether ``match.json`` existed
when ``run_predict`` returned on that rank (rank 0 must wait for rank 1's shard before matching).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from tools.runtime import configure_runtime


def main() -> None:
    configure_runtime()
    import jittor as jt

    from tools.config.schema import PredictConfig
    from tools.stages.predict import load_segmenter, run_predict

    run, data, out = (Path(a) for a in sys.argv[1:4])
    net = load_segmenter(run)

    def segmenter(x):
        if jt.rank == 1:
            time.sleep(1.0)  # a slower rank: rank 0 finishes its shard first
        return net(x)

    outcome = run_predict(
        PredictConfig(short_side=32), data, run, "validation", workers=1, progress=False,
        segmenter=segmenter, say=lambda m: None,
    )  # fmt: skip
    match = outcome.match_file
    record = {"rank": int(jt.rank), "world": int(jt.world_size), "match": str(match) if match else None}
    record["exists"] = bool(match and match.is_file())
    (out / f"rank{jt.rank}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main()
