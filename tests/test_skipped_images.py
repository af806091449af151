"""A damaged image met while training (a file changed under the job): skipped with its path logged, the
next image standing in (same batch, same on every run), up to the config's limit, then one error; the
run report lists what was skipped."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from PIL import Image

from tools.data.images import load_rgb_image
from tools.data.loader import BatchLoader
from tools.engine.skipped_images import read_skipped
from tools.errors import DatasetError


class Files:
    """Returns ``(index, mean pixel)`` of real JPEG files."""

    def __init__(self, paths):
        self.paths = paths

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        return np.int64(index), np.float32(np.asarray(load_rgb_image(self.paths[index])).mean())


def _images(folder, count=12):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        path = folder / f"img_{i:02d}.JPEG"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def _damage(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])


@pytest.mark.parametrize("workers", [0, 2])
def test_loader_skips_a_damaged_image_and_the_next_stands_in(tmp_path, workers):
    paths = _images(tmp_path)
    _damage(paths[3])
    loader = BatchLoader(Files(paths), 4, shuffle=False, num_workers=workers)
    batches = [ids.tolist() for ids, _ in loader]
    assert batches == [[0, 1, 2, 4], [4, 5, 6, 7], [8, 9, 10, 11]]
    skipped = loader.drain_skipped()
    assert [(s["index"], s["path"]) for s in skipped] == [(3, str(paths[3]))]
    assert "truncated" in skipped[0]["reason"] or "cannot read" in skipped[0]["reason"]
    assert loader.drain_skipped() == []


jt = pytest.importorskip("jittor")

from test_engine import TinyTask, _loop  # noqa: E402

from tools.engine.trainer import fit  # noqa: E402


class FileTask(TinyTask):
    """TinyTask trained on the mean pixel of real image files, through the real BatchLoader."""

    def __init__(self, paths):
        super().__init__()
        self.paths = paths

    def build_loader(self, world, seed):
        return BatchLoader(Files(self.paths), 4, seed=seed)

    def train_step(self, batch, step):
        _, means = batch
        x = jt.array(np.broadcast_to(means[:, None, None, None] / 255, (len(means), 3, 6, 6)).copy())
        return super().train_step(x.numpy(), step)


def test_training_skips_and_logs_damaged_images_up_to_the_limit(tmp_path):
    paths = _images(tmp_path / "data", 24)
    for i in (5, 17):
        _damage(paths[i])
    said: list[str] = []
    loop = dataclasses.replace(_loop(), max_skipped_images=2)
    assert fit(FileTask(paths), loop, tmp_path / "run", say=said.append).completed
    records = read_skipped(tmp_path / "run")
    assert sorted(r["path"] for r in records) == [str(paths[5]), str(paths[17])]  # each once, 3 epochs
    assert all(r["iteration"] >= 0 and r["reason"] for r in records)
    assert sum("skipped damaged image" in s for s in said) == 2

    _damage(paths[9])  # a third one: over the limit, one clear error naming the log and the key
    with pytest.raises(DatasetError, match=r"3 damaged images .*max_skipped_images=2") as caught:
        fit(FileTask(paths), loop, tmp_path / "again", say=said.append)
    assert str(tmp_path / "again" / "skipped.jsonl") in str(caught.value)


def test_run_report_lists_skipped_images(tmp_path):
    from tools.data.demo import DemoSpec, generate_demo_dataset
    from tools.report import write_run_report

    data = generate_demo_dataset(
        tmp_path / "data",
        DemoSpec(classes=2, train_per_class=1, val_per_class=1, test_per_class=0, size=32),
        False,
    )
    run = tmp_path / "run"
    (run / "finetune").mkdir(parents=True)
    page = write_run_report(run, data, workers=1).read_text()
    assert "Skipped images</h3>" in page and "none: every image" in page
    record = {"epoch": 2, "iteration": 40, "index": 7, "path": "/d/train/n01/bad.JPEG", "reason": "truncated"}
    (run / "finetune" / "skipped.jsonl").write_text(json.dumps(record) + "\n")
    page = write_run_report(run, data, workers=1).read_text()
    assert "Skipped images (1)" in page and "/d/train/n01/bad.JPEG" in page
