"""The shared training engine: schedule, SGD/LARC semantics, checkpoints and exact resume."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tools.config.schema import LoopConfig, OptimConfig
from tools.engine.schedule import lr_schedule
from tools.errors import LussError

jt = pytest.importorskip("jittor")

from tools.engine.optimizer import SGDLarc  # noqa: E402
from tools.engine.state import CheckpointMismatchError, load_model_state, model_state  # noqa: E402
from tools.engine.trainer import fit  # noqa: E402


def test_schedule_warmup_then_cosine():
    optim = OptimConfig(base_lr=1.0, final_lr=0.0, warmup_epochs=1, start_warmup_lr=0.1)
    lr = lr_schedule(optim, epochs=3, iters_per_epoch=4)
    assert lr.shape == (12,)
    np.testing.assert_allclose(lr[:4], np.linspace(0.1, 1.0, 4))
    assert lr[4] == pytest.approx(1.0)
    # cosine over 8 iterations: halfway is the midpoint of base and final
    assert lr[8] == pytest.approx(0.5)
    assert np.all(np.diff(lr[4:]) < 0)


def _quadratic_loss(w, target):
    return ((w - target) ** 2).sum()


def test_sgd_matches_torch_momentum_and_weight_decay():
    torch = pytest.importorskip("torch")
    init = np.array([1.0, -2.0, 3.0], dtype=np.float32)
    target = np.array([0.5, 0.5, 0.5], dtype=np.float32)
    w = jt.array(init)
    opt = SGDLarc([w], OptimConfig(momentum=0.9, weight_decay=0.1))
    tw = torch.tensor(init, requires_grad=True)
    topt = torch.optim.SGD([tw], lr=0.05, momentum=0.9, weight_decay=0.1)
    for _ in range(4):
        opt.step(_quadratic_loss(w, jt.array(target)), lr=0.05)
        topt.zero_grad()
        _quadratic_loss(tw, torch.tensor(target)).backward()
        topt.step()
    np.testing.assert_allclose(w.numpy(), tw.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_skipped_parameter_gets_no_update_at_all():
    a = jt.array(np.ones(3, np.float32))
    b = jt.array(np.ones(3, np.float32))
    opt = SGDLarc([a, b], OptimConfig(momentum=0.9, weight_decay=0.5))
    opt.step((a * 2).sum() + (b * 3).sum(), lr=0.1, skip={id(b)})
    np.testing.assert_array_equal(b.numpy(), np.ones(3))  # no gradient, no decay, no momentum
    np.testing.assert_allclose(a.numpy(), 1 - 0.1 * (2 + 0.5))


def test_larc_scales_by_trust_ratio():
    w0 = np.array([3.0, 4.0], dtype=np.float32)  # |w| = 5
    w = jt.array(w0)
    cfg = OptimConfig(momentum=0.0, weight_decay=0.01, larc=True, larc_trust=0.001)
    opt = SGDLarc([w], cfg)
    opt.step((w * jt.array([6.0, 8.0])).sum(), lr=1.0)  # grad = [6, 8], |g| = 10
    adaptive = 0.001 * 5 / (10 + 5 * 0.01 + 1e-8)
    expected = w0 - 1.0 * adaptive * (np.array([6.0, 8.0]) + 0.01 * w0)
    np.testing.assert_allclose(w.numpy(), expected, rtol=1e-5)


class TinyLoader:
    def __init__(self, data: np.ndarray, batch: int):
        self.data, self.batch, self.epoch = data, batch, 0

    def __len__(self):
        return len(self.data) // self.batch

    def set_epoch(self, epoch):
        self.epoch = epoch

    def iter_from(self, start):
        order = np.random.default_rng(self.epoch).permutation(len(self.data))
        for i in range(start, len(self)):
            yield self.data[order[i * self.batch : (i + 1) * self.batch]]


class TinyNet(jt.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = jt.nn.Conv2d(3, 4, 3, padding=1)
        self.bn = jt.nn.BatchNorm2d(4)
        self.fc = jt.nn.Linear(4, 2)

    def execute(self, x):
        return self.fc(jt.nn.relu(self.bn(self.conv(x))).mean(dims=(2, 3)))


class TinyTask:
    """A regression task with momentum, BN running stats and a counter as 'task state'."""

    name = "tiny"

    def __init__(self):
        self.model = TinyNet()
        self.steps_seen = 0
        self.data = np.random.default_rng(0).normal(size=(24, 3, 6, 6)).astype(np.float32)

    def trainable_parameters(self):
        return self.model.parameters()

    def build_loader(self, world, seed):
        return TinyLoader(self.data, batch=4)

    def set_train_mode(self):
        self.model.train()

    def train_step(self, batch, step):
        x = jt.array(batch)
        out = self.model(x)
        loss = ((out - x.mean(dims=(1, 2, 3)).unsqueeze(1)) ** 2).mean()
        self.steps_seen += 1
        return loss, {"loss": loss}

    def skipped_parameters(self, step):
        return {id(self.model.fc.weight)} if step.iteration < 2 else set()

    def extra_state(self):
        return {"steps_seen": self.steps_seen}

    def load_extra_state(self, state):
        self.steps_seen = state["steps_seen"]


def _loop():
    return LoopConfig(
        epochs=3,
        batch_size=4,
        seed=5,
        checkpoint_freq=2,
        log_every=1,
        optim=OptimConfig(base_lr=0.05, final_lr=0.001, weight_decay=1e-4),
    )


def test_resume_after_kill_equals_straight_run(tmp_path):
    straight = TinyTask()
    fit(straight, _loop(), tmp_path / "a")

    killed = TinyTask()
    result = fit(killed, _loop(), tmp_path / "b", stop_after_iterations=8)  # mid epoch 1
    assert not result.completed
    resumed = TinyTask()
    result = fit(resumed, _loop(), tmp_path / "b", resume=True)
    assert result.completed
    assert resumed.steps_seen == straight.steps_seen
    a, b = model_state(straight.model), model_state(resumed.model)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-6, err_msg=key)
    assert (tmp_path / "b" / "checkpoints" / "ckp-0002.pkl").is_file()
    assert (tmp_path / "b" / "checkpoints" / "final.pkl").is_file()
    iterations = [
        r["iteration"]
        for r in map(eval_json, (tmp_path / "b" / "metrics.jsonl").read_text().splitlines())
        if "loss" in r
    ]
    assert iterations == sorted(set(iterations))  # the resumed log does not repeat iterations


def eval_json(line):
    import json

    return json.loads(line)


def test_existing_checkpoint_without_resume_is_an_error(tmp_path):
    fit(TinyTask(), dataclasses.replace(_loop(), epochs=1), tmp_path)
    with pytest.raises(LussError, match="--resume"):
        fit(TinyTask(), dataclasses.replace(_loop(), epochs=1), tmp_path)


def test_strict_load_names_the_mismatch():
    net = TinyNet()
    state = model_state(net)
    state["fc.weight"] = np.zeros((3, 4), np.float32)
    with pytest.raises(CheckpointMismatchError, match=r"fc\.weight"):
        load_model_state(net, state, "ckpt.pkl")
    state = model_state(net)
    state["extra.head"] = np.zeros(1, np.float32)
    with pytest.raises(CheckpointMismatchError, match="unexpected keys.*extra.head"):
        load_model_state(net, state, "ckpt.pkl")


def test_only_the_newest_snapshots_are_kept_plus_final(tmp_path):
    loop = dataclasses.replace(_loop(), epochs=5, checkpoint_freq=1, keep_checkpoints=2)
    fit(TinyTask(), loop, tmp_path)
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["ckp-0004.pkl", "ckp-0005.pkl", "final.pkl", "latest.pkl"]
    fit(TinyTask(), dataclasses.replace(loop, keep_checkpoints=0), tmp_path / "all")
    assert len(list((tmp_path / "all" / "checkpoints").glob("ckp-*.pkl"))) == 5


class FrozenEncoderNet(jt.nn.Module):
    """A frozen tiny SAM encoder + adapter (as the sam_* archs) and a trained linear head."""

    def __init__(self):
        from models.feature_aggregator import FeatureAggregator
        from models.sam_encoder import sam_tiny

        super().__init__()
        jt.set_global_seed(3)
        self.backbone = FeatureAggregator(sam_tiny(32), out_channels=8, freeze_encoder=True)
        self.fc = jt.nn.Linear(8, 1)

    def execute(self, x):
        return self.fc(self.backbone(x).mean(dims=(2, 3)))


class FrozenEncoderTask(TinyTask):
    name = "frozen"

    def __init__(self):
        super().__init__()
        self.model = FrozenEncoderNet()
        self.data = np.random.default_rng(1).normal(size=(16, 3, 32, 32)).astype(np.float32)

    def trainable_parameters(self):
        return self.model.backbone.trainable_parameters() + self.model.fc.parameters()

    def skipped_parameters(self, step):
        return set()


def test_frozen_encoder_is_saved_once_and_resume_is_exact(tmp_path):
    import pickle

    from tools.engine.checkpoint import load_checkpoint

    loop = dataclasses.replace(_loop(), checkpoint_freq=1)
    straight = FrozenEncoderTask()
    encoder = {k: v for k, v in model_state(straight.model).items() if k.startswith("backbone.encoder.")}
    fit(straight, loop, tmp_path / "a")
    killed = FrozenEncoderTask()
    assert not fit(killed, loop, tmp_path / "b", stop_after_iterations=6).completed  # mid epoch 1
    resumed = FrozenEncoderTask()
    assert fit(resumed, loop, tmp_path / "b", resume=True).completed
    a, b = model_state(straight.model), model_state(resumed.model)
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-6, err_msg=key)

    folder = tmp_path / "b" / "checkpoints"
    assert len(list(folder.glob("frozen-*.pkl"))) == 1
    for name in ("ckp-0001.pkl", "ckp-0003.pkl", "latest.pkl", "final.pkl"):
        with open(folder / name, "rb") as fh:
            raw = pickle.load(fh)
        assert not [k for k in raw["model"] if k.startswith("backbone.encoder.")], name
        assert raw["frozen"]["keys"] == len(encoder)
        full = load_checkpoint(folder / name)["model"]
        for key, value in encoder.items():
            np.testing.assert_array_equal(full[key], value, err_msg=f"{name}: {key}")
        assert any(k.startswith("backbone.downconv.") for k in raw["model"])  # the trained adapter stays
    next(folder.glob("frozen-*.pkl")).unlink()
    with pytest.raises(LussError, match="frozen-.*missing"):
        load_checkpoint(folder / "final.pkl")
