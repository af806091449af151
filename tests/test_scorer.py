"""score_predictions end to end on a tiny ImageNet-S tree, checked against a literal re-statement of
the official evaluator (per-image loops, per-bucket concatenation, histc binning, per-class erosion)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from scipy import ndimage

from tools.data.imagenet_s import ImageNetS
from tools.data.label_codec import write_label_png
from tools.errors import LabelFormatError, LussError, SubmissionError
from tools.evaluation.match_file import load_match_file, save_match_file
from tools.evaluation.scorer import score_predictions

IGN = 1000
WNIDS = ["n01", "n02", "n03", "n04"]


def make_tree(root, gts: dict[str, np.ndarray], preds: dict[str, np.ndarray]):
    """ROOT/train/<wnid>/ (class list), ROOT/validation-segmentation/<key>.png, PRED/<key>.png."""
    for wnid in WNIDS:
        (root / "data" / "train" / wnid).mkdir(parents=True, exist_ok=True)
    for key, gt in gts.items():
        write_label_png(root / "data" / "validation-segmentation" / f"{key}.png", gt)
    for key, pred in preds.items():
        write_label_png(root / "pred" / f"{key}.png", pred)
    return root / "pred", ImageNetS(root / "data")


def random_case(seed: int, n_images: int = 6):
    """Blobs of classes 1..4 with ignore bands; predictions = permuted, shifted, noisy copies."""
    rng = np.random.default_rng(seed)
    perm = np.array([0, 3, 1, 4, 2])  # true class -> predicted id
    gts, preds = {}, {}
    for i in range(n_images):
        h, w = rng.integers(18, 40), rng.integers(18, 40)
        gt = np.zeros((h, w), np.int64)
        for c in rng.choice([1, 2, 3, 4], size=rng.integers(1, 4), replace=False):
            y, x = rng.integers(0, h - 4), rng.integers(0, w - 4)
            gt[y : y + rng.integers(2, h), x : x + rng.integers(2, w)] = c
        if i % 2:
            gt[:, : rng.integers(1, 4)] = IGN
        pred = perm[np.where(gt == IGN, 0, gt)]
        pred = np.roll(pred, rng.integers(-2, 3), axis=1)
        noise = rng.random((h, w)) < 0.1
        pred[noise] = rng.integers(0, 5, size=noise.sum())
        gts[f"{WNIDS[i % 4]}/img{i}"] = gt
        preds[f"{WNIDS[i % 4]}/img{i}"] = pred
    return gts, preds


# --- the official evaluator, restated literally ------------------------------------------------


def histc(x: np.ndarray, k: int) -> np.ndarray:
    return np.histogram(x.astype(np.float64), bins=k, range=(0, k - 1))[0]


def official_boundary(mask: np.ndarray) -> np.ndarray:
    h, w = mask.shape
    d = max(1, int(round(0.03 * np.sqrt(h**2 + w**2))))
    out = np.zeros_like(mask)
    for v in np.unique(mask):
        binary = np.pad(mask == v, 1, constant_values=False)
        eroded = ndimage.binary_erosion(binary, np.ones((3, 3)), iterations=d, border_value=1)[1:-1, 1:-1]
        out += ((mask == v) & ~eroded) * v
    return out


def official_scores(pairs, num_classes):
    k = num_classes + 1
    tot = {n: np.zeros(k) for n in ("T", "P", "TP", "BT", "BP", "BTP")}
    size_tot = {n: np.zeros((4, k)) for n in ("T", "P", "TP", "BT", "BP", "BTP")}
    fsum, acc = 0.0, 0
    for pred, gt in pairs:
        bgt, bpred = official_boundary(gt + 1), official_boundary(pred + 1)
        mask = gt.ravel() != IGN
        g, p, bg, bp = gt.ravel()[mask], pred.ravel()[mask], bgt.ravel()[mask], bpred.ravel()[mask]

        def iou_counts(pr, gg, kk):
            return histc(pr[pr == gg], kk), histc(pr, kk), histc(gg, kk)

        i, o, t = iou_counts(p, g, k)
        bi, bo, bt = iou_counts(bp, bg, k + 1)
        tot["T"] += o
        tot["P"] += t
        tot["TP"] += i  # noqa: E702
        tot["BT"] += bo[1:]
        tot["BP"] += bt[1:]
        tot["BTP"] += bi[1:]  # noqa: E702
        counts = np.bincount(g)
        sizes = {int(c): math.ceil(np.float32(100.0) * np.float32(counts[c]) / np.float32(counts.sum()))
                 for c in np.unique(g) if c != 0}  # fmt: skip
        groups = [
            [c for c, s in sizes.items() if lo < s <= hi] for lo, hi in [(0, 5), (5, 25), (25, 50), (50, 1e9)]
        ]
        for b, classes in enumerate(groups):
            if not classes:
                continue
            sel = np.isin(g, [0, *classes])
            i, o, t = iou_counts(p[sel], g[sel], k)
            size_tot["T"][b] += o
            size_tot["P"][b] += t
            size_tot["TP"][b] += i  # noqa: E702
            i, o, t = iou_counts(bp[sel], bg[sel], k + 1)
            size_tot["BT"][b] += o[1:]
            size_tot["BP"][b] += t[1:]
            size_tot["BTP"][b] += i[1:]  # noqa: E702
        tt, pp, tp = (g > 0).sum(), (p > 0).sum(), ((g > 0) & (p > 0)).sum()
        rec, prec = tp / (tt + 1e-20), tp / (pp + 1e-20)
        fsum += 1.3 * prec * rec / (0.3 * prec + rec + 1e-20)
        o = histc(p, k)
        label = np.argmax(o[1:]) + 1
        acc += int(histc(g, k)[label] > 0 and o[label] > 0)

    def miou(tp, t, p, sel=None):
        v = tp / (t + p - tp + 1e-10)
        return 100 * float(np.mean(v if sel is None else v[sel]))

    n = len(pairs)
    out = {
        "miou": miou(tot["TP"], tot["T"], tot["P"]),
        "mbiou": miou(tot["BTP"], tot["BT"], tot["BP"]),
        "fmeasure": 100 * fsum / n,
        "acc": 100 * acc / n,
    }
    for b, (name, bname) in enumerate(zip(["S", "MS", "ML", "L"], ["BS", "BMS", "BML", "BL"], strict=True)):
        ps, bps = size_tot["P"][b] > 0, size_tot["BP"][b] > 0
        out[name] = miou(size_tot["TP"][b], size_tot["T"][b], size_tot["P"][b], ps) if ps.any() else None
        out[bname] = (
            miou(size_tot["BTP"][b], size_tot["BT"][b], size_tot["BP"][b], bps) if bps.any() else None
        )
    return out


# --- tests ---------------------------------------------------------------------------------------


def test_perfect_permuted_prediction_scores_100(tmp_path):
    gts, _ = random_case(0, n_images=4)
    perm = np.array([0, 2, 3, 4, 1])
    preds = {k: perm[np.where(g == IGN, 0, g)] for k, g in gts.items()}
    pred_dir, data = make_tree(tmp_path, gts, preds)
    result = score_predictions(pred_dir, data, workers=1, progress=False)
    present = sorted({int(c) for g in gts.values() for c in np.unique(g) if 0 < c < IGN})
    assert {result.match[int(perm[c])] for c in present} == set(present)
    assert all(result.match[int(perm[c])] == c for c in present)
    assert result.acc == 100.0 and result.fmeasure == pytest.approx(100.0)
    assert all(result.per_class_iou[c] == pytest.approx(100.0) for c in [0, *present])
    # background is not 100 %: next to an ignore band the GT has a background boundary, while the
    # prediction (0 on both sides) has none; the official boundaries are taken before removing 1000.
    assert all(result.per_class_biou[c] == pytest.approx(100.0) for c in present)
    assert result.per_class_biou[0] < 100.0


@pytest.mark.parametrize("seed", [2, 10, 15])
def test_matches_the_official_evaluator(tmp_path, seed):
    gts, preds = random_case(seed)
    pred_dir, data = make_tree(tmp_path, gts, preds)
    result = score_predictions(pred_dir, data, workers=1, progress=False)
    lut = np.zeros(IGN + 1, np.int64)
    for p, c in result.match.items():
        lut[p] = c
    expected = official_scores([(lut[preds[k]], gts[k]) for k in sorted(gts)], num_classes=4)
    for name in ("miou", "mbiou", "fmeasure", "acc"):
        assert getattr(result, name) == pytest.approx(expected[name], abs=1e-9), name
    for name in ("S", "MS", "ML", "L", "BS", "BMS", "BML", "BL"):
        if expected[name] is None:
            assert result.buckets[name] is None, name
        else:
            assert result.buckets[name] == pytest.approx(expected[name], abs=1e-9), name
    assert result.num_images == len(gts) and len(result.per_class_iou) == 5


def test_parallel_equals_serial(tmp_path):
    gts, preds = random_case(4, n_images=8)
    pred_dir, data = make_tree(tmp_path, gts, preds)
    serial = score_predictions(pred_dir, data, workers=1, progress=False)
    parallel = score_predictions(pred_dir, data, workers=2, progress=False)
    assert parallel.to_dict() == serial.to_dict()


def test_given_match_is_a_dict_lookup_and_boundaries_use_raw_ids(tmp_path):
    gt = np.ones((20, 20), np.int64)
    pred = np.ones((20, 20), np.int64)
    pred[:, 10:] = 2  # two raw clusters, both mapped to class 1
    pred_dir, data = make_tree(tmp_path, {"n01/a": gt}, {"n01/a": pred})
    result = score_predictions(pred_dir, data, match={0: 0, 1: 1, 2: 1}, workers=1, progress=False)
    assert result.per_class_iou[1] == pytest.approx(100.0)
    # ImageNet-S evaluator order: the band between raw clusters 1 and 2 stays a predicted boundary
    assert result.per_class_biou[1] < 100.0


def test_predicted_id_missing_from_match_names_file_and_id(tmp_path):
    gts, preds = random_case(5, n_images=2)
    pred_dir, data = make_tree(tmp_path, gts, preds)
    with pytest.raises(LabelFormatError, match=r"img0\.png: predicted id \d has no entry in the match"):
        score_predictions(pred_dir, data, match={0: 0, 1: 1}, workers=1, progress=False)


def test_missing_prediction_is_an_error_naming_the_file(tmp_path):
    gts, preds = random_case(6, n_images=3)
    del preds["n02/img1"]
    pred_dir, data = make_tree(tmp_path, gts, preds)
    with pytest.raises(SubmissionError, match=r"n02/img1\.png") as info:
        score_predictions(pred_dir, data, workers=1, progress=False)
    assert info.value.problems == [f"missing {pred_dir / 'n02' / 'img1.png'}"]


def test_size_mismatch_names_both_files_and_sizes(tmp_path):
    gt = np.zeros((10, 12), np.int64)
    pred_dir, data = make_tree(tmp_path, {"n01/a": gt}, {"n01/a": np.zeros((12, 10), np.int64)})
    with pytest.raises(
        LabelFormatError, match=r"pred/n01/a\.png: prediction is 10x12 .*/n01/a\.png is 12x10"
    ):
        score_predictions(pred_dir, data, workers=1, progress=False)


def test_single_channel_png_is_refused(tmp_path):
    pred_dir, data = make_tree(tmp_path, {"n01/a": np.zeros((8, 8), np.int64)}, {})
    (pred_dir / "n01").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(pred_dir / "n01" / "a.png")
    with pytest.raises(LabelFormatError, match=r"a\.png: label PNG has mode 'L'"):
        score_predictions(pred_dir, data, workers=1, progress=False)


def test_ids_above_c_need_a_match(tmp_path):
    gt = np.ones((8, 8), np.int64)
    pred_dir, data = make_tree(tmp_path, {"n01/a": gt}, {"n01/a": np.full((8, 8), 9)})
    with pytest.raises(LabelFormatError, match=r"a\.png: predicted id 9 is outside 0..4"):
        score_predictions(pred_dir, data, workers=1, progress=False)
    # with a match they score: 9 -> 1000 is "no class", the pixels keep their GT area
    result = score_predictions(pred_dir, data, match={0: 0, 9: 1000}, workers=1, progress=False)
    assert result.pixel_counts["gt"][1] == 64 and sum(result.pixel_counts["pred"]) == 0


def test_threshold_zeroes_low_attention_pixels(tmp_path):
    gt = np.zeros((10, 10), np.int64)
    gt[:, :5] = 1
    pred = np.ones((10, 10), np.int64)  # over-segments the right half
    pred_dir, data = make_tree(tmp_path, {"n01/a": gt}, {"n01/a": pred})
    attn = np.where(gt == 1, 0.9, 0.2).astype(np.float16)  # any float dtype
    np.save(pred_dir / "n01" / "a.npy", attn)
    loose = score_predictions(pred_dir, data, workers=1, progress=False, boundary=False)
    tight = score_predictions(pred_dir, data, workers=1, progress=False, boundary=False, threshold=0.5)
    assert loose.per_class_iou[1] == pytest.approx(50.0)
    assert tight.per_class_iou[1] == pytest.approx(100.0) and tight.threshold == 0.5
    assert tight.mbiou is None and tight.buckets["BS"] is None
    (pred_dir / "n01" / "a.npy").unlink()
    with pytest.raises(SubmissionError, match=r"a\.npy: attention map missing"):
        score_predictions(pred_dir, data, workers=1, progress=False, threshold=0.5)


def test_match_file_round_trip_and_errors(tmp_path):
    path = tmp_path / "match.json"
    save_match_file(path, {2: 1, 1: 2})
    assert json.loads(path.read_text()) == {"0": 0, "1": 2, "2": 1}
    assert load_match_file(path) == {0: 0, 1: 2, 2: 1}
    for text, message in [
        ("{not json", "not valid JSON"),
        ('{"a": 1, "0": 0}', "key 'a' is not a non-negative integer"),
        ('{"1": 2.5, "0": 0}', "value 2.5 of key '1'"),
        ('{"1": 2}', 'no entry for "0"'),
        ("[1, 2]", "holds a list"),
    ]:
        path.write_text(text)
        with pytest.raises(LussError, match=message) as info:
            load_match_file(path)
        assert str(path) in str(info.value)


def test_cli_prints_tables_and_writes_json(tmp_path):
    from luss_cli.main import cli

    gts, preds = random_case(7, n_images=3)
    pred_dir, data = make_tree(tmp_path, gts, preds)
    out = tmp_path / "score.json"
    match_out = tmp_path / "m.json"
    args = ["score", str(pred_dir), "--data", str(data.root), "--workers", "1", "--json", str(out)]
    result = CliRunner().invoke(cli, [*args, "--save-match", str(match_out)])
    assert result.exit_code == 0, result.output
    assert "mIoU" in result.output and "n03" in result.output
    payload = json.loads(out.read_text())
    assert payload["num_images"] == 3 and len(payload["per_class_iou"]) == 5
    assert load_match_file(match_out) == {int(k): v for k, v in payload["match"].items()}
    again = CliRunner().invoke(cli, [*args, "--match", str(match_out), "--no-boundary"])
    assert again.exit_code == 0, again.output
    assert json.loads(out.read_text())["miou"] == payload["miou"]
