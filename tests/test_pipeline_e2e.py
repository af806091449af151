"""The whole pipeline through the CLI on a tiny demo dataset, as `make submission` chains it.

pretrain -> cluster -> finetune -> predict (test, validation) -> pack -> pack --check, then a rerun
that skips every finished stage, and a pretrain stopped mid-epoch that resumes to the same end.
"""

from __future__ import annotations

import json
import zipfile

import pytest
from click.testing import CliRunner

pytest.importorskip("jittor")

from luss_cli.main import cli  # noqa: E402
from tools.data.demo import DemoSpec, generate_demo_dataset  # noqa: E402

pytestmark = pytest.mark.slow

# Every training stage tiny: 3 classes x 4 train images, 32-pixel crops, batch 4, one epoch each.
TINY = [
    "pretrain.crops.sizes=[32, 16]",
    "pretrain.crops.counts=[2, 1]",
    "pretrain.loop.epochs=1",
    "pretrain.loop.batch_size=4",
    "pretrain.loop.workers=0",
    "pretrain.loop.optim.warmup_epochs=0",
    "pixel_attention.crops.sizes=[32]",
    "pixel_attention.loop.epochs=1",
    "pixel_attention.loop.batch_size=4",
    "pixel_attention.loop.workers=0",
    "cluster.saliency.enabled=false",
    "pixel_attention.saliency_weight=0.0",
    "cluster.nredo=1",
    "cluster.short_side=48",
    "cluster.crop=32",
    "finetune.crop_size=32",
    "finetune.loop.epochs=1",
    "finetune.loop.batch_size=4",
    "finetune.loop.workers=0",
    "predict.short_side=48",
]


def _sets() -> list[str]:
    return [arg for item in TINY for arg in ("--set", item)]


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    spec = DemoSpec(classes=3, train_per_class=4, val_per_class=2, test_per_class=2, size=64)
    return generate_demo_dataset(tmp_path_factory.mktemp("e2e") / "data", spec, progress=False)


def _train(data, run) -> None:
    stage_args = ["--preset", "demo", "--data", str(data), "--run", str(run), *_sets()]
    _invoke("pretrain", *stage_args, "--resume")
    _invoke("cluster", *stage_args, "--resume")
    _invoke("finetune", *stage_args, "--resume")


def test_make_submission_chain_gives_a_valid_zip_and_a_rerun_skips(data, tmp_path):
    run = tmp_path / "run"
    _train(data, run)
    for split in ("test", "validation"):
        _invoke("predict", "--run", str(run), "--data", str(data), "--split", split, "--workers", "1")
    match = run / "predict" / "validation" / "match.json"
    assert json.loads(match.read_text())["0"] == 0
    out_zip = tmp_path / "submissions" / "demo.zip"
    _invoke(
        "pack",
        str(run / "predict" / "test"),
        "--data",
        str(data),
        "--match",
        str(match),
        "--out",
        str(out_zip),
    )
    _invoke("pack", "--check", str(out_zip), "--data", str(data))
    with zipfile.ZipFile(out_zip) as zf:
        names = set(zf.namelist())
    assert {"match.json", "method.txt"} <= names
    assert sum(name.endswith(".png") for name in names) == 3 * 2
    # Scored predictions exist for validation; the cluster report carries the chosen threshold.
    report = json.loads((run / "cluster" / "report.json").read_text())
    assert 0.0 <= report["threshold"] <= 1.0

    # Rerun after success: every training stage says it is done and trains nothing.
    stamps = {p: p.stat().st_mtime_ns for p in run.rglob("checkpoints/final.pkl")}
    assert len(stamps) == 3
    stage_args = ["--preset", "demo", "--data", str(data), "--run", str(run), *_sets()]
    for command in ("pretrain", "cluster", "finetune"):
        assert "already done" in _invoke(command, *stage_args, "--resume")
    assert stamps == {p: p.stat().st_mtime_ns for p in run.rglob("checkpoints/final.pkl")}


def test_a_pretrain_stopped_midway_resumes_and_the_pipeline_completes(data, tmp_path):
    from tools.config.loader import load_config
    from tools.stages.pretrain import run_pretrain

    run = tmp_path / "run"
    # Stopped after 1 of 3 iterations, as a kill would leave it: latest.pkl, no .done.
    config = load_config("demo", TINY)
    stopped = run_pretrain(config, data, run, stop_after_iterations=1, say=lambda m: None)
    assert not stopped.completed
    assert (run / "pretrain" / "checkpoints" / "latest.pkl").is_file()
    assert not (run / "pretrain" / ".done").exists()
    _train(data, run)
    assert all((run / stage / ".done").is_file() for stage in ("pretrain", "cluster", "finetune"))


def test_pretrain_killed_with_sigkill_resumes_to_completion(data, tmp_path):
    """A real `luss pretrain` process killed -9 after its first checkpoint: the rerun finishes it."""
    import os
    import signal
    import subprocess
    import sys
    import time

    run = tmp_path / "run"
    args = ["--preset", "demo", "--data", str(data), "--run", str(run), *_sets()]
    args += ["--set", "pretrain.loop.epochs=3", "--set", "pretrain.loop.log_every=1"]
    env = {**os.environ, "LUSS_FORCE_CPU": "1", "nvcc_path": "", "log_silent": "1"}
    command = [sys.executable, "-m", "luss_cli", "pretrain", *args]
    # Jittor (imported by this test process) quick-exits the process on any killed child (its
    # SIGCHLD handler); the kill here is on purpose, so take the default handler meanwhile.
    previous = signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    try:
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        latest = run / "pretrain" / "checkpoints" / "latest.pkl"
        deadline = time.monotonic() + 300
        while not latest.is_file() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if previous is not None:
            signal.signal(signal.SIGCHLD, previous)
    assert latest.is_file(), proc.stderr.read().decode()[-2000:] if proc.stderr else ""
    assert not (run / "pretrain" / ".done").exists()  # killed before the end
    rerun = subprocess.run([*command, "--resume"], env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-2000:]
    done = json.loads((run / "pretrain" / ".done").read_text())
    assert done["iterations"] == 3 * 3
