"""``MaxPool2d``: Jittor's max pooling with a multithreaded CPU kernel (forward and backward).

Jittor's CPU max-pool backward is a single-threaded kernel that searches every window again; in a
ResNet-18 train step it cost as much as all BatchNorms together (issue 3's benchmark). Here the forward
pass records each window's argmax and the backward pass scatters the gradient there, both one OpenMP loop
over the ``N * C`` planes. A tie goes to the first maximum in the window (row-major), as in PyTorch. On
CUDA, and for non-float32 or non-4D input, it is Jittor's ``nn.Pool(op="maximum")``.
"""

from __future__ import annotations

import jittor as jt
from jittor import Function, nn

# in0 x [N, C, H, W] -> out0 y [N, C, OH, OW], out1 argmax within the plane (h * W + w) [N, C, OH, OW].
_FORWARD = r"""// luss-kernel: max pool forward
const int H = in0_shape2, W = in0_shape3, OH = out0_shape2, OW = out0_shape3;
const long planes = (long)in0_shape0 * in0_shape1;
#pragma omp parallel for schedule(static)
for (long p = 0; p < planes; p++) {
    const float* x = in0_p + p * H * W;
    float* y = out0_p + p * OH * OW;
    int* arg = out1_p + p * OH * OW;
    for (int oh = 0; oh < OH; oh++) {
        const int h0 = oh * STRIDE - PAD;
        const int h_start = h0 < 0 ? 0 : h0, h_end = h0 + KERNEL < H ? h0 + KERNEL : H;
        for (int ow = 0; ow < OW; ow++) {
            const int w0 = ow * STRIDE - PAD;
            const int w_start = w0 < 0 ? 0 : w0, w_end = w0 + KERNEL < W ? w0 + KERNEL : W;
            int best_at = h_start * W + w_start;
            float best = x[best_at];
            for (int h = h_start; h < h_end; h++)
                for (int w = w_start; w < w_end; w++) {  // branch-free: the compiler emits selects
                    const int at = h * W + w;
                    const float v = x[at];
                    const bool take = v > best;
                    best = take ? v : best;
                    best_at = take ? at : best_at;
                }
            y[oh * OW + ow] = best;
            arg[oh * OW + ow] = best_at;
        }
    }
}
"""

# in0 argmax [N, C, OH, OW], in1 dy [N, C, OH, OW] -> out0 dx [N, C, H, W]
_BACKWARD = r"""// luss-kernel: max pool backward
const long plane_in = (long)out0_shape2 * out0_shape3, plane_out = (long)in0_shape2 * in0_shape3;
const long planes = (long)out0_shape0 * out0_shape1;
#pragma omp parallel for schedule(static)
for (long p = 0; p < planes; p++) {
    float* dx = out0_p + p * plane_in;
    const int* arg = in0_p + p * plane_out;
    const float* dy = in1_p + p * plane_out;
    for (long i = 0; i < plane_in; i++) dx[i] = 0.0f;
    for (long o = 0; o < plane_out; o++) dx[arg[o]] += dy[o];
}
"""


class _MaxPoolCPU(Function):
    def __init__(self, kernel_size: int, stride: int, padding: int):
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def execute(self, x: jt.Var) -> jt.Var:
        n, c, h, w = x.shape
        k, s, p = self.kernel_size, self.stride, self.padding
        out_shape = (n, c, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)
        source = _FORWARD.replace("KERNEL", str(k)).replace("STRIDE", str(s)).replace("PAD", str(p))
        y, self.argmax = jt.code([out_shape, out_shape], ["float32", "int32"], [x], cpu_src=source)
        self.input_shape = x.shape
        return y

    def grad(self, dy: jt.Var) -> jt.Var:
        return jt.code(self.input_shape, "float32", [self.argmax, dy], cpu_src=_BACKWARD)


class MaxPool2d(nn.Module):
    """Max pooling over ``[N, C, H, W]`` (square window, no dilation, floor rounding like ``nn.Pool``)."""

    def __init__(self, kernel_size: int, stride: int | None = None, padding: int = 0):
        if padding * 2 > kernel_size:
            raise ValueError(f"padding {padding} must be at most half the kernel size {kernel_size}")
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding

    def execute(self, x: jt.Var) -> jt.Var:
        if jt.flags.use_cuda or x.ndim != 4 or x.dtype != "float32":
            return nn.pool(x, self.kernel_size, "maximum", self.padding, self.stride)
        return _MaxPoolCPU(self.kernel_size, self.stride, self.padding)(x)
