"""``epoch_*`` in metrics.jsonl is the mean over every step of the epoch, logged or not, also when the
epoch was interrupted and resumed in the middle (the partial sums travel in the checkpoint)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

jt = pytest.importorskip("jittor")

from test_engine import TinyTask, _loop  # noqa: E402

from tools.engine.trainer import fit, seed_everything  # noqa: E402

# 16 images in batches of 4: 4 steps per epoch; log_every=3 logs only steps 3 and 4 of each epoch.
LOOP = dataclasses.replace(_loop(), epochs=2, log_every=3, checkpoint_freq=1)


class RecordingTask(TinyTask):
    """TinyTask on 16 images that keeps every step's loss (read on the host, for the test only)."""

    def __init__(self, losses: list[float]):
        seed_everything(0)
        super().__init__()
        self.data = self.data[:16]
        self.losses = losses

    def train_step(self, batch, step):
        loss, metrics = super().train_step(batch, step)
        self.losses.append(float(loss.item()))
        return loss, metrics


def _epoch_records(out: Path) -> list[dict]:
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if "epoch_end" in r]


def test_epoch_loss_is_the_mean_of_every_step_not_only_the_logged_ones(tmp_path):
    losses: list[float] = []
    fit(RecordingTask(losses), LOOP, tmp_path)
    assert len(losses) == 8
    epochs = _epoch_records(tmp_path)
    assert [r["epoch_end"] for r in epochs] == [0, 1]
    for e, record in enumerate(epochs):
        every_step = losses[4 * e : 4 * e + 4]
        assert record["epoch_loss"] == pytest.approx(sum(every_step) / 4, rel=1e-12)
        logged_only = (every_step[2] + every_step[3]) / 2  # what the epoch mean used to be
        assert record["epoch_loss"] != pytest.approx(logged_only, rel=1e-6)


def test_an_epoch_resumed_mid_way_still_averages_all_its_steps(tmp_path):
    losses: list[float] = []
    result = fit(RecordingTask(losses), LOOP, tmp_path, stop_after_iterations=2)  # nothing logged yet
    assert not result.completed and len(losses) == 2
    fit(RecordingTask(losses), LOOP, tmp_path, resume=True)
    assert len(losses) == 8  # no step ran twice
    first = _epoch_records(tmp_path)[0]
    assert first["epoch_end"] == 0
    assert first["epoch_loss"] == pytest.approx(sum(losses[:4]) / 4, rel=1e-12)


def test_only_finished_steps_count_and_host_values_add_up_too():
    from tools.engine.epoch_means import EpochMeans

    means = EpochMeans({"steps": 1, "sums": {"loss": 0.1, "loss_scale": 8.0}})  # a checkpoint's partial epoch
    jt.sync(means.add({"loss": jt.array([0.2])}))
    means.add({"loss_scale": 4.0})
    means.commit()
    means.add({"loss": jt.array([100.0]), "loss_scale": 1.0})  # interrupted before it finished
    assert means.state() == {"steps": 2, "sums": {"loss": pytest.approx(0.3), "loss_scale": 12.0}}
    assert means.means() == {"epoch_loss": pytest.approx(0.15), "epoch_loss_scale": 6.0}
