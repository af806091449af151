"""Strict state loading into a Jittor module: every key must exist on both sides with the same shape.

Jittor's own ``Module.load_state_dict`` only logs a warning for a missing key or a shape mismatch and
goes on with random weights; here any such problem is a :class:`StateDictMismatchError` naming each key.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from tools.errors import LussError


class StateDictMismatchError(LussError):
    """A state dict does not fit a module: missing or unexpected keys, or shape mismatches."""

    def __init__(self, message: str, problems: list[str]):
        super().__init__(message)
        self.problems = problems


def _shape(value) -> tuple[int, ...]:
    return tuple(int(s) for s in value.shape)


def check_state_dict(module, state: Mapping[str, np.ndarray], source: str, key_prefix: str = "") -> None:
    """Raise :class:`StateDictMismatchError` unless ``state`` has exactly ``module``'s keys and shapes.

    ``key_prefix`` is prepended to key names in messages (the name the key has in the source file).
    """
    own = module.state_dict()
    p = key_prefix
    problems = []  # shape mismatches first: they tell most about a wrong checkpoint
    for key, var in own.items():
        found = _shape(np.asarray(state[key])) if key in state else None
        if found is not None and _shape(var) != found:
            problems.append(f"shape mismatch for '{p}{key}': expected {_shape(var)}, found {found}")
    problems += [
        f"missing key '{p}{k}' (expected shape {_shape(v)})" for k, v in own.items() if k not in state
    ]
    problems += [
        f"unexpected key '{p}{k}' (shape {_shape(np.asarray(v))})" for k, v in state.items() if k not in own
    ]
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise StateDictMismatchError(
            f"{source}: does not fit {type(module).__name__} ({len(problems)} problems):\n  {shown}{more}",
            problems,
        )


def assign_state_dict(
    module, state: Mapping[str, np.ndarray], source: str, key_prefix: str = ""
) -> list[str]:
    """Copy ``state`` (numpy arrays) into ``module`` strictly; return the assigned keys.

    Nothing is assigned unless every key and shape fits. A parameter's ``stop_grad`` flag is kept.
    """
    import jittor as jt

    check_state_dict(module, state, source, key_prefix)
    own = module.state_dict()
    for key, var in own.items():
        value = np.ascontiguousarray(np.asarray(state[key]), dtype=np.dtype(str(var.dtype)))
        var.assign(jt.array(value))
    return list(own)
