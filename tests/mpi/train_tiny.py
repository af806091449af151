"""Run under ``mpirun -np N``: trains a tiny conv net on rank-specific data with the shared engine and
prints a digest of the final parameters per rank (the test checks every rank agrees)."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np

from tools.runtime import configure_runtime

configure_runtime()

import jittor as jt  # noqa: E402

from tools.config.schema import LoopConfig, OptimConfig  # noqa: E402
from tools.engine.state import model_state  # noqa: E402
from tools.engine.trainer import fit  # noqa: E402


class Net(jt.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = jt.nn.Conv2d(3, 4, 3, padding=1)
        self.bn = jt.nn.BatchNorm2d(4)
        self.fc = jt.nn.Linear(4, 1)

    def execute(self, x):
        return self.fc(jt.nn.relu(self.bn(self.conv(x))).mean(dims=(2, 3)))


class ShardLoader:
    def __init__(self, data, batch):
        self.data, self.batch, self.epoch = data, batch, 0

    def __len__(self):
        return len(self.data) // self.batch

    def set_epoch(self, epoch):
        self.epoch = epoch

    def iter_from(self, start):
        for i in range(start, len(self)):
            yield self.data[i * self.batch : (i + 1) * self.batch]


class Task:
    name = "tiny"

    def __init__(self):
        self.model = Net()

    def trainable_parameters(self):
        return self.model.parameters()

    def build_loader(self, world, seed):
        data = np.random.default_rng(100 + world.rank).normal(size=(16, 3, 5, 5)).astype(np.float32)
        return ShardLoader(data, world.local_batch(8))

    def set_train_mode(self):
        self.model.train()

    def train_step(self, batch, step):
        x = jt.array(batch)
        loss = ((self.model(x) - 1.0) ** 2).mean()
        return loss, {"loss": loss}

    def skipped_parameters(self, step):
        return ()

    def extra_state(self):
        return {}

    def load_extra_state(self, state):
        pass


def main(out_dir: str) -> None:
    loop = LoopConfig(
        epochs=2,
        batch_size=8,
        seed=3,
        checkpoint_freq=1,
        log_every=1,
        optim=OptimConfig(base_lr=0.1, final_lr=0.01),
    )
    task = Task()
    fit(task, loop, Path(out_dir))
    state = model_state(task.model)
    digest = hashlib.sha256(b"".join(np.ascontiguousarray(state[k]).tobytes() for k in sorted(state)))
    print(f"RANK {jt.rank} DIGEST {digest.hexdigest()}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
