"""`luss refine` with a tiny random SAM instead of a downloaded checkpoint (for the fault matrix):

    python bench/tiny_sam_refine.py --run RUN --data D --split validation|test

The same library path as the command (run lock, data check, mask cache, voting, match.json and scores
on validation); only the SAM comes from :func:`tools.refine.tiny_sam.tiny_sam`, seeded.
"""

from __future__ import annotations

import argparse

from tools.runtime import configure_runtime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", required=True, choices=["validation", "test"])
    args = parser.parse_args()
    configure_runtime()

    from tools.data.imagenet_s import ImageNetS
    from tools.refine.generator_config import cache_fingerprint
    from tools.refine.refiner import RefineOptions, refine_split, score_refined_split
    from tools.refine.sam_model import make_mask_source
    from tools.refine.tiny_sam import TINY_GENERATOR, tiny_sam
    from tools.run_layout import RunLayout
    from tools.run_lock import run_lock

    data, layout = ImageNetS(args.data), RunLayout.at(args.run)
    fingerprint, params = cache_fingerprint(TINY_GENERATOR, "vit_b", "tiny-random-sam")
    with run_lock(args.run, f"refine --split {args.split} (tiny SAM)"):
        summary = refine_split(
            data,
            args.split,
            layout,
            RefineOptions(),
            lambda: make_mask_source(tiny_sam(), TINY_GENERATOR),
            fingerprint,
            params,
            progress=False,
        )
        print(f"refine {args.split}: {summary.voted} voted, {summary.skipped} up to date")
        score_refined_split(data, args.split, layout, workers=1)


if __name__ == "__main__":
    main()
