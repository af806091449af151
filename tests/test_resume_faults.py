"""What a resume meets after a crash: a truncated or foreign checkpoint (named; --resume falls back to the
newest snapshot that loads), a full disk while a checkpoint or PNG is written (the previous file stays,
one clear error), and a configuration that drifted since the checkpoint (ranks, batch, arch)."""

from __future__ import annotations

import dataclasses
import errno
import pickle
from pathlib import Path

import numpy as np
import pytest

from tools.atomic_io import DiskFullError
from tools.data.label_codec import read_label_png, write_label_png
from tools.engine.checkpoint import UnreadableCheckpointError, load_checkpoint, save_checkpoint
from tools.errors import LussError

jt = pytest.importorskip("jittor")

from test_engine import TinyTask, _loop  # noqa: E402

from tools.engine.state import model_state  # noqa: E402
from tools.engine.trainer import fit, seed_everything  # noqa: E402


def _task() -> TinyTask:
    """A TinyTask whose initial weights do not depend on the tests that ran before."""
    import gc

    gc.collect()  # the model of a fit that raised may still hold Jittor state
    jt.gc()
    seed_everything(0)
    return TinyTask()


LOOP = dataclasses.replace(_loop(), checkpoint_freq=1)  # 3 epochs of 6 iterations, a snapshot each epoch
SETUP = {"model": {"arch": "resnet18"}}


def _killed_run(out: Path, at: int = 8) -> Path:
    """A run stopped at iteration ``at`` (mid epoch 1): latest.pkl there, ckp-0001.pkl at the epoch start."""
    assert not fit(_task(), LOOP, out, config_dict=SETUP, stop_after_iterations=at).completed
    return out / "checkpoints"


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    task = _task()
    fit(task, LOOP, tmp_path_factory.mktemp("straight"), config_dict=SETUP)
    return model_state(task.model)


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-6, err_msg=key)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])


def test_truncated_checkpoint_is_an_error_naming_it(tmp_path):
    folder = _killed_run(tmp_path)
    _truncate(folder / "latest.pkl")
    with pytest.raises(UnreadableCheckpointError, match=str(folder / "latest.pkl")):
        load_checkpoint(folder / "latest.pkl")


@pytest.mark.parametrize("content", [pickle.dumps([1, 2, 3]), b"PK\x03\x04 a torch zip", b""])
def test_foreign_checkpoint_is_an_error_naming_it(tmp_path, content):
    path = tmp_path / "final.pkl"
    path.write_bytes(content)
    with pytest.raises(UnreadableCheckpointError, match=f"{path}: not a"):
        load_checkpoint(path)


def test_resume_falls_back_to_the_newest_snapshot_that_loads(tmp_path, straight):
    folder = _killed_run(tmp_path)
    _truncate(folder / "latest.pkl")
    said: list[str] = []
    task = _task()
    assert fit(task, LOOP, tmp_path, resume=True, config_dict=SETUP, say=said.append).completed
    assert any("resuming from" in s and "ckp-0001.pkl" in s and "latest.pkl" in s for s in said), said
    assert task.steps_seen == 18  # epoch 1 retrained from its start: every step once, as a straight run
    _assert_same(model_state(task.model), straight)


def test_resume_with_nothing_loadable_names_every_file(tmp_path):
    folder = _killed_run(tmp_path)
    for path in (folder / "latest.pkl", folder / "ckp-0001.pkl"):
        _truncate(path)
    with pytest.raises(LussError, match="no checkpoint to resume") as caught:
        fit(_task(), LOOP, tmp_path, resume=True, config_dict=SETUP)
    assert "latest.pkl" in str(caught.value) and "ckp-0001.pkl" in str(caught.value)


def _disk_fills_after(monkeypatch, target, name: str, keep: int = 10) -> None:
    """``target.name`` writes ``keep`` bytes, then fails as a full disk does."""
    original = getattr(target, name)

    def full(*args, **kwargs):
        handle = args[1] if name == "dump" else args[0]
        data = b"x" * keep
        handle.write(data) if name == "dump" else original(handle, data)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(target, name, full)


def test_disk_full_while_checkpointing_keeps_the_previous_one(tmp_path, monkeypatch, straight):
    folder = _killed_run(tmp_path)
    before = (folder / "latest.pkl").read_bytes()
    import tools.engine.checkpoint as checkpoint

    _disk_fills_after(monkeypatch, checkpoint.pickle, "dump")
    with pytest.raises(DiskFullError) as caught:
        fit(_task(), LOOP, tmp_path, resume=True, config_dict=SETUP)
    message = str(caught.value)
    # the first file the epoch end writes (its snapshot) fails; latest.pkl is never touched
    assert f"{folder / 'ckp-0002.pkl'}: the disk filled up" in message and "free space" in message
    assert (folder / "latest.pkl").read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["ckp-0001.pkl", "latest.pkl"]  # no temporary left
    monkeypatch.undo()
    task = _task()
    assert fit(task, LOOP, tmp_path, resume=True, config_dict=SETUP).completed
    _assert_same(model_state(task.model), straight)


def test_disk_full_while_writing_a_png_keeps_the_previous_one(tmp_path, monkeypatch):
    png = tmp_path / "pred" / "n01" / "a.png"
    write_label_png(png, np.ones((4, 5), np.int32))
    _disk_fills_after(monkeypatch, Path, "write_bytes")
    with pytest.raises(DiskFullError, match=f"{png}: the disk filled up"):
        write_label_png(png, np.zeros((4, 5), np.int32))
    monkeypatch.undo()
    np.testing.assert_array_equal(read_label_png(png), np.ones((4, 5)))
    assert [p.name for p in png.parent.iterdir()] == ["a.png"]


def test_resume_with_another_batch_size_is_an_error(tmp_path):
    _killed_run(tmp_path)
    with pytest.raises(LussError, match=r"global batch 4 .*--set tiny\.loop\.batch_size=4"):
        fit(_task(), dataclasses.replace(LOOP, batch_size=8), tmp_path, resume=True, config_dict=SETUP)


def test_resume_with_another_arch_is_an_error(tmp_path):
    _killed_run(tmp_path)
    other = {"model": {"arch": "resnet50"}}
    with pytest.raises(LussError, match=r"resnet18 network, this run builds resnet50.*model\.arch=resnet18"):
        fit(_task(), LOOP, tmp_path, resume=True, config_dict=other)


def test_resume_with_another_world_size_is_an_error(tmp_path):
    folder = _killed_run(tmp_path)
    for path in (folder / "latest.pkl", folder / "ckp-0001.pkl"):
        payload = load_checkpoint(path)
        payload.pop("format_version")
        save_checkpoint(path, {**payload, "world_size": 2})
    with pytest.raises(LussError, match="written by 2 ranks, this run has 1.*mpirun -np 2"):
        fit(_task(), LOOP, tmp_path, resume=True, config_dict=SETUP)
