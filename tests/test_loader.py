"""The multi-process batch loader: sharding, determinism, resume, workers, clean shutdown."""

from __future__ import annotations

import gc
import multiprocessing as mp

import numpy as np
import pytest

from tools.data.loader import BatchLoader, WorkerError


class Numbers:
    """Sample ``i`` = ``(array([i]), [array of i, array of epoch])``: a generic nested structure."""

    def __init__(self, n: int, fail_at: int | None = None):
        self.n, self.fail_at, self.epoch = n, fail_at, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        if i == self.fail_at:
            raise ValueError(f"broken sample {i}")
        return np.array([i]), [np.full((2, 2), i, np.float32), np.int64(self.epoch)]


def _loader_workers() -> list:
    """Our live worker processes (Jittor keeps its own compile pool alive, so filter by name)."""
    return [p for p in mp.active_children() if p.name.startswith("luss-loader")]


def _ids(loader, start: int = 0) -> list[list[int]]:
    return [batch[0][:, 0].tolist() for batch in loader.iter_from(start)]


def test_collated_structure():
    ids, (values, epochs) = next(iter(BatchLoader(Numbers(8), 4, shuffle=False)))
    assert ids.shape == (4, 1) and values.shape == (4, 2, 2) and epochs.shape == (4,)
    np.testing.assert_array_equal(values[:, 0, 0], ids[:, 0])


def test_two_ranks_cover_disjoint_indices():
    ranks = [BatchLoader(Numbers(20), 3, rank=r, world_size=2, seed=5) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 3  # 20 // 6
    seen = [sum(_ids(loader), []) for loader in ranks]
    assert not set(seen[0]) & set(seen[1])
    assert len(set(seen[0]) | set(seen[1])) == 18


def test_drop_last_false_pads_by_wrapping():
    loader = BatchLoader(Numbers(10), 4, shuffle=False, drop_last=False)
    assert _ids(loader) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 0, 1]]


def test_deterministic_and_epoch_dependent():
    a, b = BatchLoader(Numbers(16), 4, seed=1), BatchLoader(Numbers(16), 4, seed=1)
    assert _ids(a) == _ids(b)
    b.set_epoch(1)
    assert _ids(a) != _ids(b)
    assert all(int(batch[1][1][0]) == 1 for batch in b)  # the dataset saw the loader's epoch


def test_iter_from_equals_skipping():
    loader = BatchLoader(Numbers(24), 4, seed=2)
    loader.set_epoch(3)
    assert _ids(loader, 2) == _ids(loader)[2:]


def test_workers_match_in_process_output():
    inline = BatchLoader(Numbers(30), 3, seed=4, num_workers=0)
    workers = BatchLoader(Numbers(30), 3, seed=4, num_workers=2, prefetch=3)
    for x, y in zip(inline.iter_from(1), workers.iter_from(1), strict=True):
        np.testing.assert_array_equal(x[0], y[0])
        np.testing.assert_array_equal(x[1][0], y[1][0])
    assert not _loader_workers()


def test_worker_error_names_the_sample_and_leaves_no_workers():
    loader = BatchLoader(Numbers(16, fail_at=9), 2, shuffle=False, num_workers=2)
    with pytest.raises(WorkerError, match="broken sample 9"):
        list(loader)
    assert not _loader_workers()


def test_consumer_exception_stops_workers():
    loader = BatchLoader(Numbers(40), 2, num_workers=2)
    with pytest.raises(KeyboardInterrupt):
        for i, _ in enumerate(loader):
            if i == 2:
                raise KeyboardInterrupt
    gc.collect()
    assert not _loader_workers()


def test_spawn_workers_match_in_process_output():
    inline = BatchLoader(Numbers(12), 3, seed=6)
    spawned = BatchLoader(Numbers(12), 3, seed=6, num_workers=1, start_method="spawn")
    assert _ids(inline) == _ids(spawned)
    assert not _loader_workers()


@pytest.mark.jittor
def test_fork_after_jittor_ran_ops():
    jt = pytest.importorskip("jittor")
    assert float((jt.array([1.0, 2.0]) * 3).sum().item()) == 9.0  # Jittor's threads are up
    forked = BatchLoader(Numbers(12), 3, seed=7, num_workers=2)
    assert _ids(forked) == _ids(BatchLoader(Numbers(12), 3, seed=7))
    assert not _loader_workers()
