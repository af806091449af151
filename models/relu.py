"""``relu``: Jittor's ReLU with a multithreaded CPU kernel (forward and backward).

On the CPU Jittor runs ReLU and its gradient as single-threaded fused element-wise kernels; in a ResNet-18
train step they took more time than the BatchNorms (issue 3's benchmark). Here on the CPU both directions
are one OpenMP loop; on CUDA, and for non-float32 input, it is ``jittor.nn.relu``. The gradient at 0 is
0, as in Jittor.
"""

from __future__ import annotations

import jittor as jt
from jittor import Function, nn

_FORWARD = r"""// luss-kernel: ReLU forward
const long n = in0->num;
#pragma omp parallel for schedule(static)
for (long i = 0; i < n; i++) { const float v = in0_p[i]; out0_p[i] = v > 0 ? v : 0.0f; }
"""

# in0 y (the forward output), in1 dy -> out0 dx
_BACKWARD = r"""// luss-kernel: ReLU backward
const long n = in0->num;
#pragma omp parallel for schedule(static)
for (long i = 0; i < n; i++) out0_p[i] = in0_p[i] > 0 ? in1_p[i] : 0.0f;
"""


class _ReluCPU(Function):
    def execute(self, x: jt.Var) -> jt.Var:
        self.y = jt.code(x.shape, "float32", [x], cpu_src=_FORWARD)
        return self.y

    def grad(self, dy: jt.Var) -> jt.Var:
        return jt.code(dy.shape, "float32", [self.y, dy], cpu_src=_BACKWARD)


def relu(x: jt.Var) -> jt.Var:
    """``max(x, 0)``, element-wise; any shape."""
    if jt.flags.use_cuda or x.dtype != "float32":
        return nn.relu(x)
    return _ReluCPU()(x)
