"""Our multithreaded CPU kernels (BatchNorm, ReLU, max pooling) compute what Jittor's own ops compute.

Values, gradients and running statistics are compared with ``nn.BatchNorm``, ``nn.relu`` and ``nn.Pool``
on the same input; a ResNet-18 train step is compared with torchvision's in training mode.
"""

from __future__ import annotations

import jittor as jt
import numpy as np
import pytest
from jittor import nn

from models.batchnorm import BatchNorm2d
from models.maxpool import MaxPool2d
from models.relu import relu

pytestmark = pytest.mark.jittor


def rand(shape, seed=0, scale=1.0, shift=0.0):
    return jt.array((np.random.default_rng(seed).normal(size=shape) * scale + shift).astype(np.float32))


def close(a: jt.Var, b: jt.Var, tol: float) -> float:
    """Max abs difference, asserted below ``tol`` relative to the reference's magnitude."""
    a, b = a.numpy(), b.numpy()
    diff = float(np.abs(a - b).max())
    assert diff <= tol * max(1.0, float(np.abs(b).max())), diff
    return diff


def batchnorm_pair(channels: int, affine: bool = True):
    ours, ref = BatchNorm2d(channels, affine=affine), nn.BatchNorm2d(channels, affine=affine)
    if affine:
        for bn in (ours, ref):
            bn.weight.assign(rand((channels,), seed=1, scale=0.5, shift=1.0))
            bn.bias.assign(rand((channels,), seed=2))
    return ours, ref


def batchnorm_float64(x, weight, bias, dy, eps=1e-5):
    """Training-mode BatchNorm and its gradients in float64 numpy: ``y, dx, dweight, dbias, mean, var``."""
    x, dy = x.astype(np.float64), dy.astype(np.float64)
    dims, shape = (0, 2, 3), (1, -1, 1, 1)
    mean, var = x.mean(dims), x.var(dims)
    xhat = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
    dbias, dweight = dy.sum(dims), (dy * xhat).sum(dims)
    m = x.size / x.shape[1]
    dx = (weight / np.sqrt(var + eps)).reshape(shape) * (
        dy - (dbias / m).reshape(shape) - xhat * (dweight / m).reshape(shape)
    )
    return xhat * weight.reshape(shape) + bias.reshape(shape), dx, dweight, dbias, mean, var


@pytest.mark.parametrize(
    ("shape", "grad_tol"),
    # 2 samples per channel: channel 0 of this draw has variance 1e-3 (100 eps), where dx is a
    # difference of near-equal terms; ours is off by 3e-4 there, Jittor's own BatchNorm by 6 %.
    [((4, 6, 7, 9), 1e-5), ((2, 3, 1, 1), 1e-3), ((1, 5, 16, 3), 1e-5)],
)
def test_batchnorm_training_matches_float64_reference(shape, grad_tol):
    """Ours against exact float64 maths (Jittor's float32 E[x^2] - E[x]^2 is the less exact of the two)."""
    ours, ref = batchnorm_pair(shape[1])
    x = rand(shape, scale=3.0, shift=2.0)
    dy = rand(shape, seed=3)
    y = ours(x)
    grads = jt.grad((y * dy).sum(), [x, ours.weight, ours.bias])
    want = batchnorm_float64(x.numpy(), ours.weight.numpy(), ours.bias.numpy(), dy.numpy())
    for got, expected, tol in zip([y, *grads], want[:4], [1e-5, grad_tol, 1e-5, 1e-5], strict=True):
        assert np.abs(got.numpy() - expected).max() <= tol * max(1.0, np.abs(expected).max())
    # running statistics: momentum 0.1 from (0, 1), biased variance, as Jittor's nn.BatchNorm keeps them
    assert np.allclose(ours.running_mean.numpy(), 0.1 * want[4], atol=1e-6)
    assert np.allclose(ours.running_var.numpy(), 0.9 + 0.1 * want[5], atol=1e-5)
    ref(x)
    close(ours.running_var, ref.running_var, 1e-4)


def test_batchnorm_without_affine_and_constant_channel():
    ours = BatchNorm2d(3, affine=False)
    x = rand((2, 3, 4, 5), scale=2.0).numpy()
    x[:, 1] = 7.0  # zero variance: normalises to exactly 0, no NaN
    dy = rand((2, 3, 4, 5), seed=4).numpy()
    xj = jt.array(x)
    y = ours(xj)
    dx = jt.grad((y * jt.array(dy)).sum(), xj)
    ones, zeros = np.ones(3), np.zeros(3)
    want_y, want_dx = batchnorm_float64(x, ones, zeros, dy)[:2]
    assert np.abs(y.numpy() - want_y).max() <= 1e-5
    assert np.abs(dx.numpy() - want_dx).max() <= 1e-6 * np.abs(want_dx).max()  # ~300: 1 / sqrt(eps)
    assert np.isfinite(y.numpy()).all() and np.abs(y.numpy()[:, 1]).max() == 0.0
    assert list(ours.state_dict()) == list(nn.BatchNorm2d(3, affine=False).state_dict())


def test_batchnorm_keeps_precision_when_the_mean_dwarfs_the_spread():
    ours = BatchNorm2d(2)
    x = rand((4, 2, 3, 3), scale=0.01, shift=300.0)
    dy = rand((4, 2, 3, 3), seed=5)
    y = ours(x)
    dx = jt.grad((y * dy).sum(), x)
    want_y, want_dx = batchnorm_float64(x.numpy(), np.ones(2), np.zeros(2), dy.numpy())[:2]
    # float32 x itself carries ~3e-5 absolute error at 300, i.e. ~3e-3 of the 0.01 spread
    assert np.abs(y.numpy() - want_y).max() < 2e-2
    assert np.abs(dx.numpy() - want_dx).max() < 2e-2 * np.abs(want_dx).max()


def test_batchnorm_eval_mode_and_2d_input_use_jittor_path():
    ours, ref = batchnorm_pair(4)
    x = rand((3, 4, 5, 5), scale=2.0)
    ours(x), ref(x)  # one training step moves the running statistics
    ours.eval(), ref.eval()
    close(ours(x), ref(x), 1e-6)
    ours.train(), ref.train()
    x2 = rand((6, 4), seed=5)  # BatchNorm1d-style input: Jittor's path
    close(ours(x2), ref(x2), 1e-6)


def test_relu_matches_jittor_including_zeros():
    x = rand((3, 4, 5, 6)).numpy()
    x[0, 0, 0, :3] = 0.0
    x = jt.array(x)
    dy = rand((3, 4, 5, 6), seed=1)
    assert np.array_equal(relu(x).numpy(), nn.relu(x).numpy())
    assert np.array_equal(
        jt.grad((relu(x) * dy).sum(), x).numpy(), jt.grad((nn.relu(x) * dy).sum(), x).numpy()
    )


@pytest.mark.parametrize(
    ("shape", "kernel", "stride", "padding"),
    [((2, 3, 9, 11), 3, 2, 1), ((1, 2, 8, 8), 2, 2, 0), ((2, 2, 7, 6), 3, 1, 1), ((1, 1, 9, 8), 5, 3, 2)],
)
def test_maxpool_matches_jittor(shape, kernel, stride, padding):
    x = rand(shape)  # continuous values: no ties, so the gradient target is unique
    ours = MaxPool2d(kernel, stride=stride, padding=padding)
    ref = nn.Pool(kernel, stride=stride, padding=padding, op="maximum")
    y, y_ref = ours(x), ref(x)
    assert y.shape == y_ref.shape
    assert np.array_equal(y.numpy(), y_ref.numpy())
    dy = rand(y.shape, seed=1)
    assert np.array_equal(jt.grad((y * dy).sum(), x).numpy(), jt.grad((y_ref * dy).sum(), x).numpy())


def test_maxpool_tie_goes_to_first_maximum_like_torch():
    torch = pytest.importorskip("torch")
    x = np.zeros((1, 1, 4, 4), np.float32)
    x[0, 0, 1, 1] = x[0, 0, 1, 2] = 1.0  # two equal maxima share windows
    dy = np.arange(1, 5, dtype=np.float32).reshape(1, 1, 2, 2)
    xj = jt.array(x)
    got = jt.grad((MaxPool2d(3, stride=2, padding=1)(xj) * jt.array(dy)).sum(), xj).numpy()
    xt = torch.from_numpy(x).requires_grad_()
    (torch.nn.functional.max_pool2d(xt, 3, 2, 1) * torch.from_numpy(dy)).sum().backward()
    assert np.array_equal(got, xt.grad.numpy())


def test_maxpool_rejects_padding_over_half_the_window():
    with pytest.raises(ValueError, match="padding 2 must be at most half the kernel size 3"):
        MaxPool2d(3, stride=1, padding=2)


@pytest.mark.torch
def test_resnet18_train_step_matches_torchvision():
    """Training mode end to end: batch statistics, ReLU, max pooling and every gradient."""
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    from models.resnet import resnet18
    from tools.checkpoints.strict_load import assign_state_dict

    torch.manual_seed(0)
    ref = torchvision.models.resnet18(weights=None).train()
    ours = resnet18()
    state = {
        k: v.numpy()
        for k, v in ref.state_dict().items()
        if not k.startswith("fc.") and "num_batches" not in k
    }
    assign_state_dict(ours, state, "torchvision resnet18")
    ours.train()
    x = np.random.default_rng(0).standard_normal((4, 3, 64, 64)).astype(np.float32)
    probe = np.random.default_rng(1).standard_normal((4, 512, 2, 2)).astype(np.float32)

    out = ours(jt.array(x))
    trained = [p for p in ours.parameters() if not p.is_stop_grad()]  # not the running statistics
    grads = jt.grad((out * jt.array(probe)).sum(), trained)
    features = ref.layer4(
        ref.layer3(ref.layer2(ref.layer1(ref.maxpool(ref.relu(ref.bn1(ref.conv1(torch.from_numpy(x))))))))
    )
    (features * torch.from_numpy(probe)).sum().backward()

    assert (
        np.abs(out.numpy() - features.detach().numpy()).max()
        <= 1e-4 * np.abs(features.detach().numpy()).max()
    )
    ref_params = dict(ref.named_parameters())
    worst = 0.0
    for param, grad in zip(trained, grads, strict=True):
        want = ref_params[param.name()].grad.numpy()
        worst = max(worst, float(np.abs(grad.numpy() - want).max() / max(np.abs(want).max(), 1e-6)))
    assert worst <= 1e-3, worst
    assert np.allclose(ours.bn1.running_mean.numpy(), ref.bn1.running_mean.numpy(), atol=1e-5)
