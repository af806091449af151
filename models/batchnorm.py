"""``BatchNorm2d``: Jittor's BatchNorm with a multithreaded CPU kernel for training.

Jittor trains BatchNorm on the CPU with its generic fused reductions, which run on one core and made up a
third of a ResNet-18 train step (issue 3's benchmark). Here, in training mode on the CPU, the forward pass
(per-channel statistics, normalise, affine) and the backward pass (``dx``, ``dweight``, ``dbias``) are
each one OpenMP kernel over channels with double-precision sums.

Everything else stays Jittor's ``nn.BatchNorm``: the parameter and buffer names (checkpoints load
unchanged), the biased running variance, evaluation mode, and the path on CUDA, for non-4D or non-float32
input, and for BatchNorm synced across MPI ranks (the synced statistics need an all-reduce between the
two halves of the kernel).
"""

from __future__ import annotations

import jittor as jt
from jittor import Function, nn

_HEADER = "#include <cmath>\n"


def _per_channel_kernel(name: str, body: str) -> str:
    """C++ source running ``body`` once per channel ``c`` in parallel (OpenMP); a channel is N runs of
    L = H * W contiguous floats, M = N * L in all. ``name`` tags the kernel in Jittor's profiler."""
    return (
        f"// luss-kernel: {name}\n"
        "const int N = in0_shape0, C = in0_shape1;\n"
        "const long L = (long)in0_shape2 * in0_shape3;\n"
        "const double M = (double)N * L;\n"
        "#pragma omp parallel for schedule(static)\n"
        f"for (int c = 0; c < C; c++) {{{body}}}\n"
    )


# in0 x [N, C, H, W], in1 weight [C], in2 bias [C] -> out0 y, out1 mean [C], out2 biased variance [C].
_FORWARD = _per_channel_kernel(
    "BatchNorm forward",
    r"""
    double sum = 0, sum_sq = 0;
    for (int n = 0; n < N; n++) {
        const float* x = in0_p + ((long)n * C + c) * L;
        double s = 0, s2 = 0;
        for (long i = 0; i < L; i++) { const double v = x[i]; s += v; s2 += v * v; }
        sum += s; sum_sq += s2;
    }
    const double mean = sum / M;
    double var = sum_sq / M - mean * mean;
    if (var < 0) var = 0;
    const double scale = in1_p[c] / std::sqrt(var + EPS), shift = in2_p[c];
    out1_p[c] = (float)mean;
    out2_p[c] = (float)var;
    for (int n = 0; n < N; n++) {  // in double, (x - mean) first: no cancellation when |mean| >> std
        const long o = ((long)n * C + c) * L;
        const float* x = in0_p + o;
        float* y = out0_p + o;
        for (long i = 0; i < L; i++) y[i] = (float)((x[i] - mean) * scale + shift);
    }
""",
)

# in0 x, in1 dy, in2 weight, in3 mean, in4 biased variance -> out0 dx, out1 dweight, out2 dbias.
# With xhat = (x - mean) * invstd:  dbias = sum(dy), dweight = sum(dy * xhat) and
# dx = weight * invstd * (dy - dbias / M - xhat * dweight / M) = k1 * dy + k2 * (x - mean) + k3.
_BACKWARD = _per_channel_kernel(
    "BatchNorm backward",
    r"""
    double sum_dy = 0, sum_dy_x = 0;
    for (int n = 0; n < N; n++) {
        const long o = ((long)n * C + c) * L;
        const float* x = in0_p + o;
        const float* dy = in1_p + o;
        double s = 0, sx = 0;
        for (long i = 0; i < L; i++) { const double g = dy[i]; s += g; sx += g * x[i]; }
        sum_dy += s; sum_dy_x += sx;
    }
    const double mean = in3_p[c], invstd = 1.0 / std::sqrt((double)in4_p[c] + EPS), w = in2_p[c];
    const double sum_dy_xhat = invstd * (sum_dy_x - mean * sum_dy);
    out1_p[c] = (float)sum_dy_xhat;
    out2_p[c] = (float)sum_dy;
    const double k1 = w * invstd, k2 = -w * invstd * invstd * sum_dy_xhat / M, k3 = -w * invstd * sum_dy / M;
    for (int n = 0; n < N; n++) {  // in double: the three terms cancel when a channel barely varies
        const long o = ((long)n * C + c) * L;
        const float* x = in0_p + o;
        const float* dy = in1_p + o;
        float* dx = out0_p + o;
        for (long i = 0; i < L; i++) dx[i] = (float)(k1 * dy[i] + k2 * (x[i] - mean) + k3);
    }
""",
)


class _BatchNormTrainCPU(Function):
    """``(x, weight, bias) -> (y, batch mean, batch biased variance)``; gradients for x, weight, bias."""

    def __init__(self, eps: float):
        self.eps_literal = repr(float(eps))

    def execute(self, x: jt.Var, weight: jt.Var, bias: jt.Var):
        channels = x.shape[1]
        y, mean, var = jt.code(
            [x.shape, (channels,), (channels,)],
            ["float32", "float32", "float32"],
            [x, weight, bias],
            cpu_header=_HEADER,
            cpu_src=_FORWARD.replace("EPS", self.eps_literal),
        )
        self.saved = (x, weight, mean, var)
        return y, mean, var

    def grad(self, dy, dmean, dvar):
        if dy is None:  # only the statistics were used; they feed the running buffers, no gradient
            return None, None, None
        x, weight, mean, var = self.saved
        channels = x.shape[1]
        return jt.code(
            [x.shape, (channels,), (channels,)],
            ["float32", "float32", "float32"],
            [x, dy, weight, mean, var],
            cpu_header=_HEADER,
            cpu_src=_BACKWARD.replace("EPS", self.eps_literal),
        )


def _uses_cpu_kernel(bn: nn.BatchNorm, x: jt.Var) -> bool:
    return (
        bn.is_train
        and not jt.flags.use_cuda
        and x.ndim == 4
        and x.dtype == "float32"
        and not (bn.sync and jt.in_mpi)
    )


class BatchNorm2d(nn.BatchNorm):
    """``nn.BatchNorm`` over ``[N, C, H, W]`` whose CPU training step runs the multithreaded kernel."""

    def execute(self, x: jt.Var) -> jt.Var:
        if not _uses_cpu_kernel(self, x):
            return super().execute(x)
        channels = x.shape[1]
        if self.affine:
            weight, bias = self.weight, self.bias
        else:
            weight = jt.ones((channels,), "float32").stop_grad()
            bias = jt.zeros((channels,), "float32").stop_grad()
        y, mean, var = _BatchNormTrainCPU(self.eps)(x, weight, bias)
        mean, var = mean.stop_grad(), var.stop_grad()
        self.running_mean.update(self.running_mean + (mean - self.running_mean) * self.momentum)
        self.running_var.update(self.running_var + (var - self.running_var) * self.momentum)
        return y
