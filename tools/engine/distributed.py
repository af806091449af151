"""MPI ranks as Jittor sees them (``mpirun -np N luss ...``). All distributed helpers live here.

Jittor splits nothing by itself for us: each rank loads ``batch_size / world_size`` images, the
optimiser mean-reduces gradients across ranks and broadcasts parameters from rank 0 on its first
step, and BatchNorm (sync=True) all-reduces its statistics (``models.batchnorm.BatchNorm2d`` then
runs Jittor's own ``nn.BatchNorm`` path, not its single-process CPU kernel).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from tools.errors import LussError

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    rank: int
    size: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def local_batch(self, global_batch: int) -> int:
        """Per-rank share of a global batch; it must divide evenly so every rank steps in lockstep."""
        if global_batch % self.size:
            raise LussError(
                f"global batch size {global_batch} is not divisible by {self.size} ranks; "
                f"use a multiple of {self.size}, e.g. {max(1, global_batch // self.size) * self.size}."
            )
        return global_batch // self.size


def shard_slice(world: World) -> slice:
    """Where this rank's items sit in the whole list: every ``size``-th, from ``rank``. The one sharding
    rule: :func:`shard` takes these items, and rank 0 puts gathered per-rank results back with it."""
    return slice(world.rank, None, world.size)


def shard(items: Sequence[T], world: World) -> list[T]:
    """This rank's slice, every ``size``-th item: balanced, disjoint (no two ranks write the same file)."""
    return list(items[shard_slice(world)])


def env_world() -> World:
    """Rank/size from the MPI launcher's environment, without importing Jittor (for sharded I/O)."""
    rank = int(os.environ.get("OMPI_COMM_WORLD_RANK", os.environ.get("PMI_RANK", "0")))
    size = int(os.environ.get("OMPI_COMM_WORLD_SIZE", os.environ.get("PMI_SIZE", "1")))
    return World(rank, size)


def jittor_world() -> World:
    import jittor as jt

    if jt.in_mpi:
        return World(int(jt.rank), int(jt.world_size))
    return World(0, 1)


def barrier() -> None:
    """Block until every rank reaches this point (a tiny all-reduce); free without a launcher."""
    if env_world().size == 1:
        return
    import jittor as jt

    if jt.in_mpi:
        jt.array([1.0]).mpi_all_reduce("add").sync()


def broadcast_float(value: float) -> float:
    """Rank 0's ``value`` on every rank (exactly: a float64 broadcast)."""
    import jittor as jt

    if not jt.in_mpi:
        return value
    return float(jt.array(np.array([value], np.float64)).mpi_broadcast(0).numpy()[0])


def sum_over_ranks(value: int) -> int:
    """The sum of an integer count over ranks (e.g. files written per shard)."""
    import jittor as jt

    if not jt.in_mpi:
        return value
    return int(jt.array(np.array([value], np.float64)).mpi_all_reduce("add").numpy()[0])
