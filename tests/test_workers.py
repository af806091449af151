"""The one ``--workers`` rule (tools/workers.py): N is N (never above the tasks), 0 is auto."""

from __future__ import annotations

import os

import pytest

from tools import workers
from tools.workers import AUTO_MAX_WORKERS, usable_cpus, worker_count


def _cpus(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(n)), raising=False)


def test_an_explicit_count_is_kept_but_never_above_the_tasks():
    assert worker_count(3, 100) == 3
    assert worker_count(3, 100, pool_min_tasks=1000) == 3  # the break-even is only for auto
    assert worker_count(16, 5) == 5
    assert worker_count(4, 0) == 1


def test_auto_runs_in_process_below_the_jobs_break_even(monkeypatch):
    _cpus(monkeypatch, 6)
    assert worker_count(0, 255, pool_min_tasks=256) == 1
    assert worker_count(0, 256, pool_min_tasks=256) == 6


def test_auto_is_one_per_usable_cpu_at_most_the_cap(monkeypatch):
    _cpus(monkeypatch, 3)
    assert worker_count(0, 100) == 3
    assert worker_count(0, 2) == 2
    _cpus(monkeypatch, 64)
    assert worker_count(0, 10_000) == AUTO_MAX_WORKERS == 8


def test_usable_cpus_is_the_affinity_mask_not_the_machine(monkeypatch):
    _cpus(monkeypatch, 2)
    monkeypatch.setattr(os, "cpu_count", lambda: 128)
    assert usable_cpus() == 2


def test_a_negative_count_is_refused():
    with pytest.raises(ValueError, match=">= 0"):
        worker_count(-1, 10)


def test_the_help_words_say_the_rule():
    assert f"at most {AUTO_MAX_WORKERS}" in workers.AUTO_HELP


def test_chunks_give_each_worker_about_four_and_stay_small():
    from tools.workers import chunk_size

    assert chunk_size(100, 5, most=64) == 5  # 20 chunks for 5 workers
    assert chunk_size(10_000, 2, most=64) == 64
    assert chunk_size(3, 8, most=64) == 1
    assert chunk_size(0, 1, most=64) == 1
