"""Run under ``mpirun -np 2``: SAM voting of a validation split with a tiny random SAM, sharded.

Arguments: DATA RUN OUT. Each rank writes ``OUT/rank<r>.json`` (its shard, and whether ``match.json``
existed when ``score_refined_split`` returned on that rank).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the tiny SAM fixtures

from tools.runtime import configure_runtime  # noqa: E402


def main() -> None:
    configure_runtime()
    import torch
    from sam_fixtures import TINY_GENERATOR, tiny_sam

    from tools.data.imagenet_s import ImageNetS
    from tools.engine.distributed import env_world
    from tools.refine.generator_config import cache_fingerprint
    from tools.refine.refiner import RefineOptions, refine_split, score_refined_split
    from tools.refine.sam_model import make_mask_source
    from tools.run_layout import RunLayout

    torch.set_num_threads(1)
    data, run, out = (Path(a) for a in sys.argv[1:4])
    world = env_world()
    fingerprint, params = cache_fingerprint(TINY_GENERATOR, "vit_b", "sam_vit_b_01ec64.pth")
    dataset, layout = ImageNetS(data), RunLayout.at(run)
    summary = refine_split(
        dataset, "validation", layout, RefineOptions(), lambda: make_mask_source(tiny_sam(), TINY_GENERATOR),
        fingerprint, params, world, progress=False,
    )  # fmt: skip
    match = score_refined_split(dataset, "validation", layout, world, workers=1).match_file
    record = {"rank": world.rank, "world": world.size, "voted": summary.voted}
    record["exists"] = bool(match and match.is_file())
    (out / f"rank{world.rank}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main()
