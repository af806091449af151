"""`make rehearsal`: the real presets (architectures intact, schedules/resolutions/data shrunk through
--set) under `mpirun -np 2` on the CPU, from Stage 1 to a zip that `luss pack --check` accepts.

    python bench/rehearsal.py                      # luss50-pass, luss50-sampass, luss300
    python bench/rehearsal.py --presets luss50-pass --work /tmp/rehearsal --ranks 2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools.rehearsal.dataset import odd_sized_dataset  # noqa: E402
from tools.rehearsal.runner import format_table, rehearse  # noqa: E402
from tools.rehearsal.shrink import REHEARSED_PRESETS  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--presets", default=",".join(REHEARSED_PRESETS))
    parser.add_argument("--work", type=Path, default=Path("runs/rehearsal"))
    parser.add_argument("--ranks", type=int, default=2)
    args = parser.parse_args()
    start = time.perf_counter()
    data = odd_sized_dataset(args.work / "data")
    results = []
    for preset in args.presets.split(","):
        results.append(rehearse(preset, data, args.work, ranks=args.ranks))
        print(f"{preset}: {results[-1].zip_path} accepted by luss pack --check", flush=True)
    print(
        f"\nRehearsal under mpirun -np {args.ranks} on the CPU ({time.perf_counter() - start:.0f} s in all):"
    )
    print(format_table(results))
    summary = [
        {"preset": r.preset, "stages": {s.stage: round(s.seconds, 1) for s in r.stages}} for r in results
    ]
    (args.work / "rehearsal.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
