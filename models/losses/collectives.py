"""The ``all_reduce(var, op)`` protocol the losses use for cross-rank sums and maxima.

``op`` is ``"add"`` or ``"max"``. A single process passes :func:`identity_all_reduce`. Under MPI,
:func:`mpi_all_reduce` does ``"add"`` with Jittor's ``mpi_all_reduce`` and ``"max"`` by an all-gather
built from a sum, because Jittor 1.3.11's MPI all-reduce only supports ``add`` and ``mean``.
"""

from __future__ import annotations

from collections.abc import Callable

import jittor as jt

AllReduce = Callable[[jt.Var, str], jt.Var]


def identity_all_reduce(var: jt.Var, op: str = "add") -> jt.Var:
    """One process: the reduction over ranks is the value itself."""
    if op not in ("add", "max"):
        raise ValueError(f"unsupported all-reduce op {op!r}; expected 'add' or 'max'")
    return var


def mpi_all_reduce(var: jt.Var, op: str = "add") -> jt.Var:
    """Reduce ``var`` over MPI ranks (identity outside MPI); ``"max"`` sums a ``[world_size, ...]`` buffer."""
    if op not in ("add", "max"):
        raise ValueError(f"unsupported all-reduce op {op!r}; expected 'add' or 'max'")
    if not jt.in_mpi:
        return var
    if op == "add":
        return var.mpi_all_reduce("add")
    # All-gather by sum: each rank writes its value into its own slot of a zero buffer.
    world, rank = int(jt.world_size), int(jt.rank)
    slots = jt.zeros((world, *var.shape), dtype=var.dtype)
    slots[rank] = var
    return slots.mpi_all_reduce("add").max(dim=0)
