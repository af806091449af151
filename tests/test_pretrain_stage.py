"""Stage 1 (`luss pretrain`) on a tiny demo dataset: outputs, skip when done, exact resume, data errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from tools.config.loader import load_config
from tools.data.demo import DemoSpec, generate_demo_dataset
from tools.errors import LussError

pytest.importorskip("jittor")

from tools.engine.checkpoint import load_checkpoint  # noqa: E402
from tools.stages.pretrain import run_pretrain  # noqa: E402

# 12 train images, batch 4: 3 iterations per epoch at 32/16-pixel crops.
TINY = [
    "pretrain.crops.sizes=[32, 16]",
    "pretrain.crops.counts=[2, 1]",
    "pretrain.loop.batch_size=4",
    "pretrain.loop.workers=0",
    "pretrain.loop.log_every=1",
    "pretrain.loop.checkpoint_freq=1",
    "pretrain.loop.optim.warmup_epochs=0",
    # The reference augmentation, not the demo's weak one: these tests must not move with the demo preset.
    "pretrain.crops.color_strength=1.0",
    "pretrain.crops.grayscale_p=0.2",
]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    spec = DemoSpec(classes=3, train_per_class=4, val_per_class=0, test_per_class=0, size=64)
    return generate_demo_dataset(tmp_path_factory.mktemp("pt") / "data", spec, progress=False)


def _config(*extra: str):
    return load_config("demo", [*TINY, *extra])


def test_run_writes_config_checkpoints_metrics_and_done_then_skips(data, tmp_path):
    run = tmp_path / "run"
    config = _config("pretrain.loop.epochs=1", "pretrain.freeze_prototypes_niters=2")
    result = run_pretrain(config, data, run, say=lambda m: None)
    assert result.completed and result.iterations == 3
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["pretrain"]["crops"]["sizes"] == [32, 16]
    ckpts = run / "pretrain" / "checkpoints"
    assert (ckpts / "final.pkl").is_file() and (ckpts / "latest.pkl").is_file()
    records = [json.loads(line) for line in (run / "pretrain" / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "epoch_end" not in r]
    assert len(steps) == 3
    for r in steps:
        assert {"loss", "swav", "p2p", "d2s3"} <= set(r) and np.isfinite(r["loss"])
    assert any("epoch_swav" in r for r in records)
    assert (run / "pretrain" / ".done").is_file()

    messages: list[str] = []
    again = run_pretrain(config, data, run, say=messages.append)
    assert again.completed and again.iterations == 3
    assert messages and "already done" in messages[0]


def test_stop_and_resume_equals_straight_run(data, tmp_path):
    # A queue of 2 batches (half full at the stop, used from iteration 2 on) and prototypes frozen for
    # iterations 0 and 1: the resumed run must restore the queue, the freeze and the lr mid-epoch.
    # Large crops only: a 16-pixel crop leaves 1x1 maps in layer4, where BatchNorm over 4 samples blows
    # float rounding (1e-7) up to 1e-3 in two steps, which would hide a real resume bug in the noise.
    extra = (
        "pretrain.crops.counts=[2, 0]",
        "pretrain.loop.epochs=1",
        "pretrain.queue_length=8",
        "pretrain.epoch_queue_starts=0",
        "pretrain.freeze_prototypes_niters=2",
    )
    straight = run_pretrain(_config(*extra), data, tmp_path / "a", say=lambda m: None)
    assert straight.completed and straight.iterations == 3

    stopped = run_pretrain(_config(*extra), data, tmp_path / "b", stop_after_iterations=1, say=lambda m: None)
    assert not stopped.completed and stopped.iterations == 1
    assert not (tmp_path / "b" / "pretrain" / ".done").exists()
    latest = load_checkpoint(tmp_path / "b" / "pretrain" / "checkpoints" / "latest.pkl")
    assert latest["extra"]["queue"] is not None  # the queue travels with the checkpoint
    with pytest.raises(LussError, match="--resume"):
        run_pretrain(_config(*extra), data, tmp_path / "b", say=lambda m: None)
    resumed = run_pretrain(_config(*extra), data, tmp_path / "b", resume=True, say=lambda m: None)
    assert resumed.completed and resumed.iterations == 3

    # Iteration 2 scores its codes against the queue: a queue lost on resume changes its SwAV term.
    logged = [_step_metrics(tmp_path / run / "pretrain" / "metrics.jsonl") for run in ("a", "b")]
    assert sorted(logged[0]) == sorted(logged[1]) == [0, 1, 2]
    for it, values in logged[0].items():
        for key in ("loss", "swav", "p2p", "d2s3"):
            assert logged[1][it][key] == pytest.approx(values[key], rel=1e-4, abs=1e-5), (it, key)
    a = load_checkpoint(straight.final_checkpoint)["model"]
    b = load_checkpoint(resumed.final_checkpoint)["model"]
    assert sorted(a) == sorted(b)
    for key in a:
        np.testing.assert_allclose(b[key], a[key], rtol=1e-4, atol=1e-4, err_msg=key)


def _step_metrics(path) -> dict[int, dict]:
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return {r["iteration"]: r for r in records if "epoch_end" not in r}


def test_missing_train_folder_names_the_path(tmp_path):
    (tmp_path / "data" / "validation").mkdir(parents=True)
    with pytest.raises(LussError, match=str(tmp_path / "data" / "train")):
        run_pretrain(_config(), tmp_path / "data", tmp_path / "run", say=lambda m: None)


def test_empty_train_folder_names_the_path(tmp_path):
    (tmp_path / "data" / "train" / "n01").mkdir(parents=True)
    with pytest.raises(LussError, match=str(tmp_path / "data" / "train")):
        run_pretrain(_config(), tmp_path / "data", tmp_path / "run", say=lambda m: None)
    assert not (tmp_path / "run" / "config.yaml").exists()


@pytest.mark.slow
def test_demo_preset_swav_falls_below_log_k(tmp_path):
    """The demo recipe learns: 5 epochs into its own schedule the epoch SwAV loss is clearly below ln K.

    The run follows the preset's schedule (LARC, cosine over its 48 epochs) and stops after 5 epochs as
    if killed. Under the earlier 24-epoch schedule at lr 0.6, with the preset's seed on a 2-core AMD EPYC
    machine the first five epoch losses were 3.98, 3.68, 3.46, 3.34, 3.23 against ln 32 = 3.47, and the
    whole run ended at 2.45. The
    schedule squeezed into 4 epochs, as this test ran before LARC, decays the learning rate before
    LARC's slower start has moved the loss (3.48 after 4 epochs there); with the earlier plain SGD
    seeds 31, 1 and 3 ended that 4-epoch run at 3.29, 3.22 and 3.25.
    """
    spec = DemoSpec()
    demo = generate_demo_dataset(tmp_path / "data", spec, progress=False)
    config = load_config("demo", ["pretrain.loop.workers=0"])
    iterations_per_epoch = spec.classes * spec.train_per_class // config.pretrain.loop.batch_size
    run_pretrain(
        config, demo, tmp_path / "run", stop_after_iterations=5 * iterations_per_epoch, say=lambda _msg: None
    )
    lines = (tmp_path / "run" / "pretrain" / "metrics.jsonl").read_text().splitlines()
    epochs = [json.loads(line) for line in lines if "epoch_end" in json.loads(line)]
    log_k = np.log(config.model.num_prototypes)
    assert len(epochs) == 5
    assert epochs[0]["epoch_swav"] > epochs[-1]["epoch_swav"]
    assert epochs[-1]["epoch_swav"] < log_k - 0.1, [e["epoch_swav"] for e in epochs]
