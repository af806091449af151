"""Run under ``mpirun -np 2``: ``luss predict ARGS...`` through the real CLI entry, where rank 1 raises
on its first image while rank 0 goes on to the barrier after its shard. The job must end, not hang."""

from __future__ import annotations

import os
import sys

from tools.errors import LussError


def main() -> None:
    import tools.predict.runner as runner

    if os.environ.get("OMPI_COMM_WORLD_RANK") == "1":

        def broken(*args, **kwargs):
            raise LussError("rank 1 broke on purpose")

        runner.predict_image = broken
    from luss_cli.main import main as luss_main

    sys.argv = ["luss", "predict", *sys.argv[1:]]
    luss_main()


if __name__ == "__main__":
    main()
