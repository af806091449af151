"""Model state as plain numpy dicts, and a strict loader that names every mismatch."""

from __future__ import annotations

import numpy as np

from tools.errors import LussError


class CheckpointMismatchError(LussError):
    """A checkpoint does not fit the model it is loaded into."""


def model_state(module) -> dict[str, np.ndarray]:
    """Every parameter and buffer (BatchNorm running stats included) as numpy, by name."""
    return {name: var.numpy().copy() for name, var in module.state_dict().items()}


def frozen_state(module) -> dict[str, np.ndarray]:
    """The state of frozen encoders (a submodule with ``freeze_encoder`` true and an ``encoder``, e.g. the
    SAM encoder of a Feature Aggregator): weights that training never changes, saved once per run."""
    prefixes = tuple(
        f"{name}.encoder." if name else "encoder."
        for name, sub in module.named_modules()
        if getattr(sub, "freeze_encoder", False) and getattr(sub, "encoder", None) is not None
    )
    if not prefixes:
        return {}
    return {k: v for k, v in model_state(module).items() if k.startswith(prefixes)}


def load_model_state(
    module,
    state: dict[str, np.ndarray],
    source: str,
    strict: bool = True,
    ignore_prefixes: tuple[str, ...] = (),
) -> list[str]:
    """Copy ``state`` into ``module``. Returns the model keys the state did not provide.

    ``strict``: a missing key, an unexpected key or a shape mismatch raises, naming the key, the
    shapes and ``source``. Non-strict still refuses shape mismatches (a silent partial load of a
    wrong architecture is the bug this guards against) but tolerates missing/unexpected keys;
    ``ignore_prefixes`` drops checkpoint keys on purpose (e.g. heads of an earlier stage).
    """
    import jittor as jt

    targets = module.state_dict()
    state = (
        {k: v for k, v in state.items() if not k.startswith(ignore_prefixes)} if ignore_prefixes else state
    )
    missing = sorted(set(targets) - set(state))
    unexpected = sorted(set(state) - set(targets))
    mismatched = [
        f"{k}: checkpoint {tuple(np.shape(state[k]))} vs model {tuple(targets[k].shape)}"
        for k in sorted(set(state) & set(targets))
        if tuple(np.shape(state[k])) != tuple(targets[k].shape)
    ]
    problems = []
    if mismatched:
        problems.append("shape mismatch: " + "; ".join(mismatched[:10]))
    if strict and missing:
        problems.append(f"missing keys ({len(missing)}): " + ", ".join(missing[:10]))
    if strict and unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): " + ", ".join(unexpected[:10]))
    if problems:
        raise CheckpointMismatchError(
            f"{source} does not fit this model ({'; '.join(problems)}). Was it written by another "
            "preset/architecture? Start a new --run or use the matching --preset."
        )
    for key in sorted(set(state) & set(targets)):
        value = np.asarray(state[key])
        target = targets[key]
        target.update(jt.array(value.astype(str(target.dtype), copy=False)))
    return missing
