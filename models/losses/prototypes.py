"""Prototype upkeep: row normalisation before every iteration and freezing for the first iterations.

Freezing (PASS ``freeze_prototypes_niters``): PASS sets ``p.grad = None`` for the prototypes, which makes
torch's SGD skip them entirely (no update, no weight decay, no momentum). Zeroing the gradient is not
the same: an SGD step would still apply weight decay and momentum. In Jittor 1.3.11,
``Optimizer.backward`` computes gradients only for parameters that are not stop-grad and
``jt.optim.SGD.step`` skips stop-grad parameters, which is why the Jittor port toggled ``stop_grad()``.
``luss`` instead steps with :class:`tools.engine.optimizer.SGDLarc`, whose ``step(loss, lr, skip=ids)``
back-propagates through ``Optimizer.backward`` and leaves every parameter whose ``id`` is in ``skip``
untouched; :func:`frozen_prototype_ids` gives that set. Keeping the parameter's stop-grad flag alone
matters because ``SGDLarc`` drops stop-grad parameters when it is built: a model built while the
prototypes were stop-grad would never train them.
"""

from __future__ import annotations

from collections.abc import Iterable

import jittor as jt

from models.precision import full_precision


def normalize_prototypes(weight: jt.Var, eps: float = 1e-12) -> None:
    """Rescale each row of the prototype matrix ``[K, D]`` to unit L2 norm, in place, without gradient.

    Not under ``jt.no_grad()``: in Jittor 1.3.11 ``assign`` inside ``no_grad`` turns the parameter
    itself into a stop-grad Var, which silently stops the prototypes from ever training again.
    Assigning a detached value keeps the parameter trainable and records no graph. Always float32: it
    runs inside a train step's AMP scope, where the assigned value would otherwise turn the master
    weights into float16.
    """
    with full_precision():
        norm = jt.sqrt((weight * weight).sum(dim=1, keepdims=True)).maximum(eps)
        weight.assign((weight / norm).detach())


def prototype_parameters(named_parameters: Iterable[tuple[str, jt.Var]], key: str = "prototypes") -> list:
    """Parameters whose name contains ``key`` (the reference matched ``"prototypes" in name``)."""
    return [p for name, p in named_parameters if key in name]


def frozen_prototype_ids(prototypes: Iterable[jt.Var], iteration: int, freeze_niters: int) -> set[int]:
    """``{id(p)}`` of the prototypes while ``iteration < freeze_niters``, else the empty set.

    Pass it as ``skip`` to :meth:`tools.engine.optimizer.SGDLarc.step`; ``iteration`` is the global step
    ``epoch * iters_per_epoch + it``, so the freeze survives a resume correctly.
    """
    if iteration < freeze_niters:
        return {id(p) for p in prototypes}
    return set()
