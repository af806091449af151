"""The fault matrix's comparison of two run folders: equal outputs pass (wall-clock stamps aside), any
changed pixel, tensor, array, zip member or JSON value, and any file on one side only, is named."""

from __future__ import annotations

import json
import pickle
import shutil
import zipfile

import numpy as np
import pytest

from tools.data.label_codec import write_label_png
from tools.run_compare import compare_runs


@pytest.fixture()
def runs(tmp_path):
    a = tmp_path / "a"
    write_label_png(a / "predict" / "validation" / "n01" / "x.png", np.arange(12).reshape(3, 4))
    (a / "predict" / "validation" / "match.json").write_text(json.dumps({"1": 1, "0": 0}))
    ckpt = {"model": {"w": np.ones((2, 2), np.float32)}, "saved_at": 1.0, "epoch": 3}
    (a / "pretrain" / "checkpoints").mkdir(parents=True)
    (a / "pretrain" / "checkpoints" / "latest.pkl").write_bytes(pickle.dumps(ckpt))
    np.save(a / "centroids.npy", np.zeros(3))
    with zipfile.ZipFile(a / "sub.zip", "w") as zf:
        zf.writestr("method.txt", "m")
    (a / "pretrain" / "metrics.jsonl").write_text('{"img_s": 10}\n')
    (a / "pretrain" / ".done").write_text(json.dumps({"iterations": 9, "elapsed_seconds": 3.0}))
    b = tmp_path / "b"
    shutil.copytree(a, b)
    return a, b


def test_identical_runs_and_clock_only_changes_pass(runs):
    a, b = runs
    ckpt = pickle.loads((b / "pretrain/checkpoints/latest.pkl").read_bytes())
    (b / "pretrain/checkpoints/latest.pkl").write_bytes(pickle.dumps({**ckpt, "saved_at": 2.0}))
    (b / "pretrain" / "metrics.jsonl").write_text('{"img_s": 99}\n')
    (b / "pretrain" / ".done").write_text(json.dumps({"iterations": 9, "elapsed_seconds": 7.5}))
    assert compare_runs(a, b) == (6, 6, [])


def test_every_kind_of_difference_is_named(runs):
    a, b = runs
    write_label_png(b / "predict/validation/n01/x.png", np.arange(12).reshape(3, 4) % 5)
    (b / "predict/validation/match.json").write_text(json.dumps({"1": 2, "0": 0}))
    ckpt = pickle.loads((b / "pretrain/checkpoints/latest.pkl").read_bytes())
    ckpt["model"]["w"][0, 0] = 1 + 1e-7
    (b / "pretrain/checkpoints/latest.pkl").write_bytes(pickle.dumps(ckpt))
    np.save(b / "centroids.npy", np.ones(3))
    with zipfile.ZipFile(b / "sub.zip", "w") as zf:
        zf.writestr("method.txt", "other")
    (b / ".lock").write_text("{}")
    (b / "pretrain/checkpoints/.latest.pkl.x.tmp").write_bytes(b"")
    compared, identical, found = compare_runs(a, b)
    assert (compared, identical) == (6, 1)
    text = "\n".join(found)
    for expected in (
        "predict/validation/n01/x.png: bytes differ",
        "predict/validation/match.json: JSON differs",
        "latest.pkl.model.w: max |diff|",
        "centroids.npy: arrays differ",
        "sub.zip: zip members differ",
        ".lock: extra file",
        ".latest.pkl.x.tmp: extra file",
    ):
        assert expected in text, text
    (a / "only-here.png").write_bytes(b"x")
    assert "only-here.png: missing" in compare_runs(a, b)[2]
