"""The PASS threshold sweep: .npy attention changes predictions, the best t, and one pass == T scorings."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from tools.data.imagenet_s import ImageNetS
from tools.data.label_codec import write_label_png
from tools.errors import LabelFormatError, LussError, SubmissionError
from tools.evaluation.curve import threshold_curve, threshold_range
from tools.evaluation.scorer import score_predictions

WNIDS = ["n01", "n02", "n03"]


def make_tree(root, cases: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]):
    """cases: key -> (gt, pred, attention). Returns (pred_dir, dataset)."""
    for wnid in WNIDS:
        (root / "data" / "train" / wnid).mkdir(parents=True, exist_ok=True)
    for key, (gt, pred, attn) in cases.items():
        write_label_png(root / "data" / "validation-segmentation" / f"{key}.png", gt)
        write_label_png(root / "pred" / f"{key}.png", pred)
        np.save(root / "pred" / f"{key}.npy", attn)
    return root / "pred", ImageNetS(root / "data")


def overextended_case():
    """Each image: class c on the left half, predicted (as id 4 - c) over the whole image; the
    right half has attention 0.35, the left 0.7 (stored as float32)."""
    cases = {}
    for c in (1, 2, 3):
        gt = np.zeros((8, 10), np.int64)
        gt[:, :5] = c
        pred = np.full((8, 10), 4 - c)
        attn = np.where(gt > 0, 0.7, 0.35).astype(np.float32)
        cases[f"{WNIDS[c - 1]}/img"] = (gt, pred, attn)
    return cases


def random_cases(seed: int, n_images: int = 6):
    rng = np.random.default_rng(seed)
    cases = {}
    for i in range(n_images):
        h, w = rng.integers(12, 30), rng.integers(12, 30)
        gt = np.zeros((h, w), np.int64)
        for c in rng.choice([1, 2, 3], size=rng.integers(1, 3), replace=False):
            y, x = rng.integers(0, h - 3), rng.integers(0, w - 3)
            gt[y : y + rng.integers(2, h), x : x + rng.integers(2, w)] = c
        pred = np.array([0, 2, 3, 1])[gt]
        pred[rng.random((h, w)) < 0.3] = rng.integers(1, 4)
        if i % 3 == 0:
            gt[-2:, :] = 1000
        attn = (rng.random((h, w)) * 0.5 + 0.4 * (gt > 0)).astype(np.float64)
        cases[f"{WNIDS[i % 3]}/img{i}"] = (gt, pred, attn)
    return cases


def test_threshold_range_defaults():
    ts = threshold_range()
    assert len(ts) == 81 and ts[0] == 0.0 and ts[-1] == 0.8
    assert all(ts[i] == i / 100 for i in range(81))
    assert threshold_range(0.2, 0.3, 0.05) == [0.2, 0.25, 0.3]


def test_best_threshold_removes_the_overextension(tmp_path):
    pred_dir, data = make_tree(tmp_path, overextended_case())
    thresholds = [0.3, 0.35, 0.36, 0.5, 0.7, 0.71]
    curve = threshold_curve(pred_dir, data, thresholds=thresholds, workers=1, progress=False)
    # 0.35 keeps the right half: float32(attention) == float32(t) is not "below t"
    assert curve.miou[0] == pytest.approx(curve.miou[1]) and curve.miou[1] < 100
    assert curve.miou[2] == pytest.approx(100.0) and curve.miou[4] == pytest.approx(100.0)
    assert curve.acc[5] == 0.0 and curve.fmeasure[5] == 0.0  # 0.71 zeroes everything
    assert curve.best_threshold == 0.36 and curve.best_index == 2
    assert curve.best.threshold == 0.36 and curve.best.miou == pytest.approx(100.0)
    assert curve.best.mbiou is not None and curve.best.match == {0: 0, 1: 3, 2: 2, 3: 1}
    assert curve.matches[2] == curve.best.match


@pytest.mark.parametrize("seed", [0, 1])
def test_one_pass_curve_equals_separate_scorings(tmp_path, seed):
    pred_dir, data = make_tree(tmp_path, random_cases(seed))
    thresholds = threshold_range(0.0, 0.8, 0.1)
    curve = threshold_curve(pred_dir, data, thresholds=thresholds, workers=1, progress=False)
    for j in (0, 3, 5, 8):
        single = score_predictions(
            pred_dir, data, threshold=thresholds[j], boundary=False, workers=1, progress=False
        )
        assert single.match == curve.matches[j]
        assert (single.miou, single.acc, single.fmeasure) == (curve.miou[j], curve.acc[j], curve.fmeasure[j])
    best = score_predictions(pred_dir, data, threshold=curve.best_threshold, workers=1, progress=False)
    assert best.to_dict() == curve.best.to_dict()


def test_parallel_curve_equals_serial(tmp_path):
    pred_dir, data = make_tree(tmp_path, random_cases(2, n_images=9))
    thresholds = threshold_range(0.2, 0.6, 0.1)
    serial = threshold_curve(pred_dir, data, thresholds=thresholds, workers=1, progress=False)
    parallel = threshold_curve(pred_dir, data, thresholds=thresholds, workers=2, progress=False)
    assert parallel.to_dict() == serial.to_dict()


def test_curve_errors(tmp_path):
    cases = overextended_case()
    pred_dir, data = make_tree(tmp_path, cases)
    with pytest.raises(LussError, match="strictly increasing"):
        threshold_curve(pred_dir, data, thresholds=[0.5, 0.4], workers=1, progress=False)
    (pred_dir / "n02" / "img.npy").unlink()
    with pytest.raises(SubmissionError, match=r"n02/img\.npy: attention map missing"):
        threshold_curve(pred_dir, data, thresholds=[0.5], workers=1, progress=False)
    gt, _, attn = cases["n02/img"]
    np.save(pred_dir / "n02" / "img.npy", attn)
    write_label_png(pred_dir / "n02" / "img.png", np.full(gt.shape, 7))
    with pytest.raises(LabelFormatError, match=r"img\.png: predicted id 7 is outside 0..3"):
        threshold_curve(pred_dir, data, thresholds=[0.5], workers=1, progress=False)


def test_cli_curve_writes_the_sweep(tmp_path):
    from luss_cli.main import cli

    pred_dir, data = make_tree(tmp_path, overextended_case())
    out = tmp_path / "curve.json"
    args = ["score", str(pred_dir), "--data", str(data.root), "--curve", "--t-min", "0.3", "--t-max", "0.4"]
    result = CliRunner().invoke(cli, [*args, "--t-step", "0.05", "--workers", "1", "--json", str(out)])
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text())
    assert [row["threshold"] for row in payload["curve"]] == [0.3, 0.35, 0.4]
    assert payload["best_threshold"] == 0.4 and payload["best"]["miou"] == pytest.approx(100.0)
    bad = CliRunner().invoke(cli, [*args, "--threshold", "0.5"])
    assert bad.exit_code != 0 and "--curve picks its own threshold" in bad.output
