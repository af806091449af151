"""The PASS ResNet computes what torchvision's ResNet computes with the same weights."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

import jittor as jt  # noqa: E402

from models.resnet import resnet18, resnet50  # noqa: E402
from tools.checkpoints.strict_load import assign_state_dict  # noqa: E402

pytestmark = [pytest.mark.jittor, pytest.mark.torch]


def randomized_torchvision(name: str, seed: int = 0):
    """torchvision ResNet in eval mode with random BatchNorm statistics and affine parameters.

    The last BN of each residual branch gets small weights so activations stay O(1) through 16 blocks
    (with unit weights ResNet-50 reaches ~1e3 and float32 rounding alone exceeds 1e-4 absolute).
    """
    torch.manual_seed(seed)
    ref = getattr(torchvision.models, name)(weights=None).eval()
    last_bns = {
        id(b.bn3 if hasattr(b, "bn3") else b.bn2)
        for layer in (ref.layer1, ref.layer2, ref.layer3, ref.layer4)
        for b in layer
    }
    with torch.no_grad():
        for m in ref.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0.0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                low, high = (0.1, 0.3) if id(m) in last_bns else (0.5, 1.5)
                m.weight.uniform_(low, high)
                m.bias.normal_(0.0, 0.1)
    return ref


def copy_weights(ref, ours) -> None:
    """torchvision state dict -> ours, strictly (the classifier ``fc`` and BN counters are not ours)."""
    state = {
        k: v.numpy()
        for k, v in ref.state_dict().items()
        if not k.startswith("fc.") and "num_batches" not in k
    }
    assign_state_dict(ours, state, f"torchvision {type(ref).__name__}")


def torch_stages(ref, x):
    with torch.no_grad():
        x = ref.maxpool(ref.relu(ref.bn1(ref.conv1(x))))
        c1 = ref.layer1(x)
        c2 = ref.layer2(c1)
        c3 = ref.layer3(c2)
        return ref.layer4(c3).numpy(), {1: c1.numpy(), 2: c2.numpy(), 3: c3.numpy()}


def check_parity(name, builder, batch):
    ref = randomized_torchvision(name)
    ours = builder()
    copy_weights(ref, ours)
    ours.eval()
    x = np.random.default_rng(0).standard_normal((batch, 3, 64, 64)).astype(np.float32)
    expected, expected_stages = torch_stages(ref, torch.from_numpy(x))
    got, stages = ours(jt.array(x), return_stages=True)
    diffs = {"out": np.abs(got.numpy() - expected).max()}
    diffs.update({f"c{s}": np.abs(stages[s].numpy() - expected_stages[s]).max() for s in (1, 2, 3)})
    print(
        f"{name} parity 64x64 (max |out| {np.abs(expected).max():.1f}): "
        + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items())
    )
    assert got.shape == (batch, ours.num_features, 2, 2)
    assert max(diffs.values()) <= 1e-4


def test_resnet18_matches_torchvision():
    """torchvision's stem is conv7x7 pad 3; ours is ConstantPad2d(1) + pad 2: the same numbers."""
    check_parity("resnet18", resnet18, batch=2)


@pytest.mark.slow
def test_resnet50_matches_torchvision():
    check_parity("resnet50", resnet50, batch=1)


def test_widths_strides_and_stage_maps():
    net = resnet18(width=16)
    got, stages = net(jt.zeros((1, 3, 64, 96)), return_stages=True)
    assert (net.num_features, net.output_stride) == (128, 32)
    assert net.stage_channels == {1: 16, 2: 32, 3: 64, 4: 128}
    assert got.shape == (1, 128, 2, 3)
    assert [tuple(stages[s].shape) for s in (1, 2, 3)] == [(1, 16, 16, 24), (1, 32, 8, 12), (1, 64, 4, 6)]
    assert resnet50().stage_channels == {1: 256, 2: 512, 3: 1024, 4: 2048}


def test_init_is_kaiming_normal_fan_out_and_unit_batchnorm():
    net = resnet50()
    w = net.layer3[0].conv2.weight.numpy()  # [256, 256, 3, 3]: fan_out = 256 * 9
    assert abs(w.std() - np.sqrt(2.0 / (256 * 9))) < 0.05 * np.sqrt(2.0 / (256 * 9))
    assert abs(w.mean()) < 1e-3
    assert np.all(net.layer2[1].bn3.weight.numpy() == 1) and np.all(net.layer2[1].bn3.bias.numpy() == 0)
