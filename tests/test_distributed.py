"""The one sharding rule (tools/engine/distributed.py): every ``size``-th item from ``rank``."""

from __future__ import annotations

import numpy as np

from tools.engine.distributed import World, shard, shard_slice


def test_shards_are_disjoint_balanced_and_cover_every_item():
    items = list(range(7))
    parts = [shard(items, World(r, 3)) for r in range(3)]
    assert parts == [[0, 3, 6], [1, 4], [2, 5]]
    assert shard(items, World(0, 1)) == items


def test_shard_slice_puts_gathered_rows_back_in_order():
    rows = np.arange(14).reshape(7, 2)
    gathered = np.zeros_like(rows)
    for r in range(3):
        world = World(r, 3)
        gathered[shard_slice(world)] = np.asarray(shard(list(rows), world))
    np.testing.assert_array_equal(gathered, rows)
