"""Precision scopes for Jittor's automatic mixed precision (AMP).

Jittor decides an op's dtype when the op is created, from the ``amp_reg`` flags in force at that
moment (``auto_mixed_precision_level`` sets them; the backward pass reuses each forward op's flags).
At level 4 every float op without a Python scalar operand prefers float16, even on two float32
inputs, while reductions and the "white list" (``exp``, ``log``, ``pow``...) stay float32.

* :func:`autocast` opens such a scope around a training step's forward pass;
* :func:`full_precision` closes it again for code that must stay float32 whatever the caller does
  (Sinkhorn's log-domain normalisation, the SwAV queue, BatchNorm running statistics);
* :func:`restore_float32_buffers` puts back into float32 the buffers a forward pass under AMP
  re-created in float16 (Jittor's BatchNorm assigns its running statistics inside the forward pass).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import jittor as jt

AMP_LEVEL = 4  # prefer float16; reductions and the white list stay float32 (Jittor's setter for 4)


def autocast(enabled: bool) -> contextlib.AbstractContextManager:
    """The AMP scope of a forward pass (a no-op when ``enabled`` is false)."""
    if not enabled:
        return contextlib.nullcontext()
    return jt.flag_scope(auto_mixed_precision_level=AMP_LEVEL)


@contextlib.contextmanager
def full_precision() -> Iterator[None]:
    """Ops created inside are float32 from float32 inputs, also inside an :func:`autocast` scope."""
    if jt.flags.amp_reg == 0:
        yield
        return
    with jt.flag_scope(auto_mixed_precision_level=0):
        yield


def restore_float32_buffers(module: jt.Module) -> int:
    """Cast every float16 buffer of ``module`` (not its trainable parameters) back to float32."""
    restored = 0
    with full_precision():
        for var in module.state_dict().values():
            if isinstance(var, jt.Var) and var.is_stop_grad() and str(var.dtype) == "float16":
                var.update(var.float32())
                restored += 1
    return restored
