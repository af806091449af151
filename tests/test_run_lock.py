"""One command per run folder: a second one stops naming the first; a normal exit releases the lock; a lock
left by a killed process (or one whose pid was reused) is taken over."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tools.run_lock import LOCK_NAME, RunInUseError, run_lock

REPO = Path(__file__).resolve().parents[1]
HOLD = """
import os, sys, time
from tools.run_lock import run_lock
with run_lock(sys.argv[1], "pretrain"):
    print(os.getpid(), flush=True)
    time.sleep(60)
"""


class Holder:
    """A process holding the lock of ``run``, started under ``sh``: Jittor (imported by other tests of
    the session) ends a process whose direct child dies of SIGKILL, so the test kills a grandchild."""

    def __init__(self, run: Path):
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        cmd = [sys.executable, "-c", HOLD, str(run)]
        self.shell = subprocess.Popen(
            ["sh", "-c", '"$@"; exit 0', "sh", *cmd], stdout=subprocess.PIPE, env=env
        )
        self.pid = int(self.shell.stdout.readline())

    def kill(self, sig: int = signal.SIGKILL) -> None:
        os.kill(self.pid, sig)
        self.shell.wait(timeout=30)  # sh reaps it: no zombie


def test_held_while_the_block_runs_and_released_after(tmp_path):
    with run_lock(tmp_path, "cluster"):
        record = json.loads((tmp_path / LOCK_NAME).read_text())
        assert record["pid"] == os.getpid() and record["command"] == "cluster"
        with run_lock(tmp_path, "nested"):  # the same process may nest (a command calling a stage)
            pass
        assert (tmp_path / LOCK_NAME).is_file()
    assert not (tmp_path / LOCK_NAME).exists()


def test_released_when_the_block_raises(tmp_path):
    with pytest.raises(ZeroDivisionError), run_lock(tmp_path, "finetune"):
        raise ZeroDivisionError("inside the block")
    assert not (tmp_path / LOCK_NAME).exists()


def test_second_command_stops_and_a_killed_holder_leaves_a_stale_lock(tmp_path):
    holder = Holder(tmp_path)
    try:
        with pytest.raises(RunInUseError) as caught, run_lock(tmp_path, "cluster"):
            pass
        message = str(caught.value)
        assert f"pid {holder.pid}" in message and "`luss pretrain`" in message and "another --run" in message
    finally:
        holder.kill()
    assert (tmp_path / LOCK_NAME).is_file()  # SIGKILL cannot clean up ...
    with run_lock(tmp_path, "cluster"):  # ... but the next command sees the pid is gone
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()


def test_a_holder_ended_by_sigterm_does_not_block_the_next_command(tmp_path):
    holder = Holder(tmp_path)
    holder.kill(signal.SIGTERM)
    with run_lock(tmp_path, "predict"):
        assert json.loads((tmp_path / LOCK_NAME).read_text())["command"] == "predict"


def test_a_reused_pid_is_not_the_holder(tmp_path):
    """The lock's pid now belongs to another process (this one, started at another time): stale."""
    record = {"pid": os.getpid(), "start_ticks": 1, "host": os.uname().nodename, "command": "pretrain"}
    (tmp_path / LOCK_NAME).write_text(json.dumps(record))
    with run_lock(tmp_path, "finetune"):
        assert json.loads((tmp_path / LOCK_NAME).read_text())["command"] == "finetune"


def test_cli_refuses_a_run_in_use(tmp_path):
    holder = Holder(tmp_path / "run")
    try:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        start = time.monotonic()
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "luss_cli",
                "report",
                "--run",
                str(tmp_path / "run"),
                "--data",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
    finally:
        holder.kill()
    assert proc.returncode == 2, proc.stderr
    assert "is in use by `luss pretrain`" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run" / "report.html").exists() and time.monotonic() - start < 60


def test_taking_the_lock_removes_what_a_killed_writer_left(tmp_path):
    """A SIGKILL during an atomic write leaves ``.<name>.*.tmp``; the next command's lock sweeps it, and
    keeps a temporary younger than itself (another rank of its job may be writing it)."""
    stale = tmp_path / "finetune" / "checkpoints" / ".final.pkl.abc.pkl.tmp"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    fresh = tmp_path / "predict" / ".x.png.def.png.tmp"
    fresh.parent.mkdir()
    fresh.write_bytes(b"being written")
    with run_lock(tmp_path, "finetune"):
        assert not stale.exists() and fresh.exists()
