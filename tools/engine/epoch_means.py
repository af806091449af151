"""The ``epoch_*`` metrics: the mean of every step of the epoch, not only of the logged ones.

Reading a Jittor value on the host each step would force a sync (on a GPU, a stall per step). So
the running sums of Jittor metrics stay Jittor Vars (float64): :meth:`EpochMeans.add` returns them
and the trainer hands them to the optimiser, whose one sync per step executes them with the
parameter update. Host values (AMP's loss scale) are summed on the host. The sums are read once,
at the end of the epoch, and when a resumable checkpoint is saved mid-epoch (:meth:`state`), so a
resumed epoch still averages every step since the epoch began.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class EpochMeans:
    def __init__(self, state: dict[str, Any] | None = None):
        """An empty epoch, or the partial epoch of a checkpoint's :meth:`state`."""
        state = state or {}
        self.steps = int(state.get("steps", 0))
        self._sums: dict[str, Any] = dict(state.get("sums", {}))
        self._step: dict[str, Any] = {}  # the sums with the current step, until it is committed

    def add(self, metrics: dict[str, Any]) -> list:
        """Add values of the current step; returns the Jittor sums it made, to be executed with the
        step's update. They count once :meth:`commit` says the step finished (an interrupted step is
        redone after a resume, so it must not count twice)."""
        import jittor as jt

        pending = []
        for key, value in metrics.items():
            total = self._step.get(key, self._sums.get(key, 0.0))
            if isinstance(value, jt.Var) or isinstance(total, jt.Var):
                total = _float64_var(total) + _float64_var(value)
                pending.append(total)
            else:
                total = total + float(value)
            self._step[key] = total
        return pending

    def commit(self) -> None:
        """The current step finished: its values count."""
        self._sums.update(self._step)
        self._step = {}
        self.steps += 1

    def state(self) -> dict[str, Any]:
        """Plain floats of the finished steps (checkpoint-ready): ``{"steps": n, "sums": {key: sum}}``."""
        return {"steps": self.steps, "sums": {k: _host(v) for k, v in self._sums.items()}}

    def means(self) -> dict[str, float]:
        """``{"epoch_<key>": mean over every finished step}``."""
        return {f"epoch_{k}": _host(v) / max(self.steps, 1) for k, v in self._sums.items()}


def _float64_var(value: Any):
    """A Jittor float64 value (a Python float would enter Jittor as float32 and lose digits)."""
    import jittor as jt

    if isinstance(value, jt.Var):
        return value.detach().float64()
    return jt.array(np.array([value], np.float64))


def _host(value: Any) -> float:
    return float(value.item()) if hasattr(value, "item") else float(value)
