"""How many processes a parallel job over files starts: the one rule behind every ``--workers``.

``--workers N`` (N > 0) starts N processes, never more than there are tasks. ``0`` (auto, the default
everywhere) starts one per CPU this process may use, at most :data:`AUTO_MAX_WORKERS`, and none (the
job runs in the calling process) when the job is smaller than its own break-even size.

Why the cap: packing (``tools.packing.rules``) keeps a few batches per worker in flight while one
parent reads the zip, so the memory in flight grows with the worker count and the serial reader is
the limit beyond a few workers; spawned workers each load numpy and PIL again. Eight is what every
job here (scoring, the threshold curve, PNG checks, dataset checks, demo drawing) stays safe and
near its best with; ask for more with ``--workers N``.
Why the affinity mask, not ``os.cpu_count()``: under ``taskset``, a container's CPU set or a cluster
scheduler the machine has more CPUs than the job may run on, and one process per machine CPU would
oversubscribe the ones it has.
"""

from __future__ import annotations

import math
import os

AUTO_MAX_WORKERS = 8

# The words every ``--workers`` help text uses for 0 (luss_cli.options.workers_option).
AUTO_HELP = "0 = one per CPU, at most 8 (in-process for small jobs)"


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask; the machine's count where there is none)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def worker_count(requested: int, tasks: int, pool_min_tasks: int = 0) -> int:
    """Processes for ``tasks`` units of work: ``requested`` (0 = auto, see the module), at least 1.

    ``pool_min_tasks``: under auto, jobs with fewer tasks run in the calling process (1), because
    starting worker processes would cost more than they save (each job measures its own break-even).
    """
    if requested < 0:
        raise ValueError(f"workers must be >= 0, got {requested}")
    if requested == 0:
        if tasks < pool_min_tasks:
            return 1
        requested = min(usable_cpus(), AUTO_MAX_WORKERS)
    return max(1, min(requested, tasks))


def chunk_size(tasks: int, workers: int, most: int) -> int:
    """Tasks per chunk sent to a worker: about four chunks per worker balance the load, and at most
    ``most`` per chunk keep pickling and the progress steps small."""
    return max(1, min(most, math.ceil(tasks / (4 * max(1, workers)))))
