"""The numeric precision of a training stage: fp32 (TF32 on CUDA) or AMP with dynamic loss scaling.

``loop.precision = amp`` is Jittor's automatic mixed precision (:mod:`models.precision`): fp16
activations and gradients, fp32 weights, optimiser state, Sinkhorn and queue. fp16 gradients
underflow without loss scaling (PASS trained with apex O1, which scales dynamically), so the loss is
multiplied by :class:`DynamicLossScale`'s factor before the backward pass and the gradients divided
by it after; a step whose gradients overflowed is skipped and the factor halved, and after
``growth_interval`` clean steps it doubles (apex/torch defaults).

AMP needs CUDA: on the CPU Jittor's float16 kernels are incomplete (a float16 convolution fails to
compile), so ``amp`` falls back to fp32 there and says so. ``loop.tf32`` sets Jittor's
``use_tensorcore=1`` for fp32 runs on CUDA (cuBLAS TF32 products, cuDNN tensor-op convolutions);
under AMP it stays 0, because with float16 inputs Jittor's ``use_tensorcore`` selects float16
*accumulation* in cuBLAS.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass

from tools.config.schema import LoopConfig


@dataclass(frozen=True)
class Precision:
    amp: bool
    tf32: bool
    note: str  # what the stage's status line says


def resolve_precision(loop: LoopConfig, on_cuda: bool) -> Precision:
    """What ``loop.precision`` / ``loop.tf32`` mean on this device."""
    if loop.precision == "amp":
        if on_cuda:
            return Precision(True, False, "precision amp (fp16 activations, fp32 weights, loss scaling)")
        return Precision(False, False, "precision fp32 (amp needs CUDA; on the CPU it falls back to fp32)")
    if on_cuda and loop.tf32:
        return Precision(False, True, "precision fp32 with TF32 tensor cores")
    return Precision(False, False, "precision fp32")


@contextlib.contextmanager
def tensor_core_scope(precision: Precision) -> Iterator[None]:
    """Jittor's ``use_tensorcore`` for the duration of a stage (read when kernels run, not created)."""
    import jittor as jt

    with jt.flag_scope(use_tensorcore=1 if precision.tf32 else 0):
        yield


class DynamicLossScale:
    """Loss scaling for fp16 gradients: ``scale`` the loss, ``unscale`` the gradients, ``update``."""

    def __init__(self, init_scale: float = 2.0**16, growth_interval: int = 2000, min_scale: float = 1.0):
        self.scale = float(init_scale)
        self.growth_interval = int(growth_interval)
        self.min_scale = float(min_scale)
        self.clean_steps = 0
        self.skipped_steps = 0

    def update(self, finite: bool) -> None:
        """After a step: halve on overflow (the step was skipped), double after enough clean steps."""
        if not finite:
            self.scale = max(self.scale / 2.0, self.min_scale)
            self.clean_steps = 0
            self.skipped_steps += 1
            return
        self.clean_steps += 1
        if self.clean_steps >= self.growth_interval:
            self.scale *= 2.0
            self.clean_steps = 0

    @staticmethod
    def all_finite(grads: list) -> bool:
        """One scalar read for the whole list: ``0 * g`` is NaN exactly where ``g`` is inf or NaN."""
        if not grads:
            return True
        total = sum((g.float32() * 0.0).sum() for g in grads)
        return math.isfinite(float(total.item()))

    def state_dict(self) -> dict:
        return {"scale": self.scale, "clean_steps": self.clean_steps, "skipped_steps": self.skipped_steps}

    def load_state_dict(self, state: dict) -> None:
        self.scale = float(state["scale"])
        self.clean_steps = int(state["clean_steps"])
        self.skipped_steps = int(state["skipped_steps"])


def stage_precision(loop: LoopConfig) -> Precision:
    """:func:`resolve_precision` on the device Jittor runs on now."""
    import jittor as jt

    return resolve_precision(loop, on_cuda=bool(jt.flags.use_cuda))
