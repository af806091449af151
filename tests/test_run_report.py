"""RUN/report.html: one self-contained page from whatever a run holds, the headline first."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

from tools.data.demo import DemoSpec, generate_demo_dataset
from tools.data.imagenet_s import ImageNetS
from tools.data.label_codec import read_label_png
from tools.report import write_run_report
from tools.report.ladder import Ladder, LadderStep, write_ladder

DIAGNOSTICS = {"emb_spread": 0.8, "score_spread": 0.2, "protos_used": 0.5}
NEW_CLUSTER_KEYS = {
    "no_attention": {"cluster_accuracy": 0.625, "nmi": 0.4},
    "saliency": {"coverage": 0.3, "fg_iou": 0.55, "gt_coverage": 0.25, "measured": 3},
    "train_pseudo_labels": {"coverage": 0.2, "fg_iou": 0.45, "gt_coverage": 0.25, "measured": 3},
    "ground_truth_object": {"cluster_accuracy": 0.875, "nmi": 0.7},
}


def _fake_run(tmp_path, new_keys: bool = True):
    """A run with pretrain metrics, a cluster report and perfect validation predictions.

    ``new_keys=False``: what a run from before the learning diagnostics holds.
    """
    data = generate_demo_dataset(
        tmp_path / "data",
        DemoSpec(classes=3, train_per_class=1, val_per_class=2, test_per_class=0, size=48),
        False,
    )
    run = tmp_path / "run"
    (run / "pretrain").mkdir(parents=True)
    (run / "config.yaml").write_text(
        "preset: demo\ncluster:\n  saliency: {enabled: true}\nfinetune:\n  head: last_layer\n"
    )
    extra = DIAGNOSTICS if new_keys else {}
    lines = [
        {"iteration": i, "epoch": 0, "lr": 0.1, "loss": 5.0 - i, "swav": 3.0 - i / 2, **extra}
        for i in range(4)
    ]
    lines.append({"iteration": 3, "epoch_end": 0, "epoch_loss": 3.5, "epoch_swav": 2.2})
    (run / "pretrain" / "metrics.jsonl").write_text(
        "\n".join(json.dumps(x) for x in lines) + "\n{cut by a kill"
    )
    (run / "cluster").mkdir()
    curve = [{"t": t / 10, "miou": 10.0 + t} for t in range(5)]
    report = {
        "num_clusters": 3,
        "nmi": 0.5,
        "cluster_accuracy": 0.75,
        "threshold": 0.4,
        "validation_miou": 11.5,
        "curve": curve,
        **(NEW_CLUSTER_KEYS if new_keys else {}),
    }
    (run / "cluster" / "report.json").write_text(json.dumps(report))
    # Perfect predictions: the GT PNGs themselves, with the identity match.
    predict = run / "predict" / "validation"
    shutil.copytree(data / "validation-segmentation", predict)
    (predict / "match.json").write_text(json.dumps({"0": 0, "1": 1, "2": 2, "3": 3}))
    return data, run


def _headings(page: str) -> list[str]:
    return re.findall(r"<h2>([^<]+)</h2>", page)


def _row(page: str, label: str) -> list[str]:
    """The cells of the table row whose first cell is ``label``."""
    match = re.search(rf"<tr><th>{re.escape(label)}</th>(.*?)</tr>", page)
    assert match, f"no row {label!r}"
    return re.findall(r"<td>([^<]*)</td>", match.group(1))


def _all_background_miou(data) -> float:
    """By hand: predicting 0 everywhere, background IoU = GT background / valid pixels; others 0."""
    masks = [read_label_png(p) for p in sorted((data / "validation-segmentation").glob("*/*.png"))]
    valid = sum(int((m != 1000).sum()) for m in masks)
    background = sum(int((m == 0).sum()) for m in masks)
    return 100 * background / valid / (ImageNetS(data).num_classes + 1)


@pytest.fixture(scope="module")
def new_run(tmp_path_factory):
    """``(data, run, page)`` of a run with every new key, rendered once for the tests that only read it."""
    data, run = _fake_run(tmp_path_factory.mktemp("new-run"))
    path = write_run_report(run, data, workers=1)
    assert path == run / "report.html"
    return data, run, path.read_text()


def test_report_opens_with_the_headline_and_folds_the_config_last(new_run):
    page = new_run[2]
    assert _headings(page) == [
        "Headline",
        "Training stages",
        "Clustering and threshold sweep",
        "Per-class IoU",
        "Resolved config",
    ]
    # GT scored against itself (1000 ignored): every class 100 %, the first table of the page.
    assert page.index("Final validation scores") < page.index("Stage ladder") < page.index("Training stages")
    assert _row(page, "mIoU") == ["100.00"]
    images = re.findall(r'alt="([^"]+)" src="data:image/png;base64,', page)
    assert images == [
        "overlays",
        "pretrain curves",
        "pretrain diagnostics",
        "threshold sweep",
        "per-class IoU",
    ]
    folded = page[page.rindex("<details>") :]
    assert "preset: demo" in folded and "<h2>" not in folded.replace("<h2>Resolved config</h2>", "")
    assert page.count("preset: demo") == 1
    assert "not run yet" in page  # finetune has no metrics: said, not drawn
    assert not re.search(r"(src|href)=\"(http|file|/)", page)  # nothing outside the file


def test_without_ladder_json_the_report_computes_the_single_run_ladder(new_run):
    data, _, page = new_run
    assert "Computed from this run" in page
    floor = _all_background_miou(data)
    assert _row(page, "all background") == [f"{floor:.2f}", "0.00", "", ""]
    assert _row(page, "pseudo-labels with saliency") == ["11.50", "-", f"{11.5 - floor:+.2f}", "t = 0.40"]
    assert _row(page, "+ finetune (last_layer head)") == ["100.00", "100.00", "+88.50", ""]
    assert "+ refine" not in page  # no refined predictions in this run


def test_ladder_json_replaces_the_computed_ladder(tmp_path):
    data, run = _fake_run(tmp_path)
    steps = [
        LadderStep("all background", 9.25, 0.0),
        LadderStep("pseudo-labels without saliency", 9.5, None, "t = 0.51"),
        LadderStep("pseudo-labels with saliency", 12.0, None, "t = 0.72"),
    ]
    clusters = {"with saliency": {"cluster_accuracy": 0.5, "nmi": 0.25}, "without saliency": {"nmi": 0.125}}
    write_ladder(run, Ladder("make bench-pipeline", steps, clusters, seed=7))
    page = write_run_report(run, data, workers=1).read_text()
    assert "From RUN/ladder.json (make bench-pipeline, seed 7)" in page
    assert "Computed from this run" not in page
    assert _row(page, "pseudo-labels without saliency") == ["9.50", "-", "+0.25", "t = 0.51"]
    assert _row(page, "cluster accuracy") == ["0.500", "-"]
    assert _row(page, "NMI") == ["0.250", "0.125"]


def test_new_cluster_keys_show_in_the_headline_with_the_ground_truth_note(new_run):
    page = new_run[2]
    headline = page[: page.index("<h2>Training stages</h2>")]
    assert _row(headline, "cluster accuracy") == ["0.750"]
    assert _row(headline, "cluster accuracy without attention") == ["0.625"]
    assert _row(headline, "NMI without attention") == ["0.400"]
    assert _row(headline, "saliency: IoU with the ground-truth foreground") == ["0.550"]
    assert _row(headline, "train pseudo-labels: IoU with the ground-truth foreground") == ["0.450"]
    assert _row(headline, "cluster accuracy, features pooled over the ground-truth object") == ["0.875"]
    assert "never in training" in headline


def test_a_run_from_before_the_diagnostics_still_renders(tmp_path):
    data, run = _fake_run(tmp_path, new_keys=False)
    page = write_run_report(run, data, workers=1).read_text()
    images = re.findall(r'alt="([^"]+)" src="data:image/png;base64,', page)
    assert "pretrain diagnostics" not in images and "pretrain curves" in images
    assert "pretrain: no learning diagnostics logged" in page
    assert "no saliency or pseudo-label quality" in page
    assert "without attention" not in page and "ground-truth object" not in page
    assert _row(page, "cluster accuracy") == ["0.750"]


def test_corrupt_ladder_json_falls_back_to_the_computed_ladder(tmp_path):
    data, run = _fake_run(tmp_path)
    (run / "ladder.json").write_text('{"steps": [')
    page = write_run_report(run, data, workers=1).read_text()
    assert "Computed from this run" in page


def test_report_of_an_empty_run_says_what_is_missing(tmp_path):
    data = generate_demo_dataset(
        tmp_path / "data",
        DemoSpec(classes=2, train_per_class=1, val_per_class=1, test_per_class=0, size=48),
        False,
    )
    run = tmp_path / "run"
    run.mkdir()
    page = write_run_report(run, data, workers=1).read_text()
    assert "no config.yaml yet" in page
    assert "no scored validation predictions yet" in page
    assert _row(page, "pseudo-labels")[-1] == "cluster stage not finished"
    assert _row(page, "+ finetune (configured head)")[-1] == "not predicted yet"


@pytest.mark.parametrize("by_epoch", [True, False])
def test_diagnostics_are_drawn_by_epoch_once_an_epoch_logged_them(by_epoch):
    from tools.report.plots import diagnostic_series

    records = [{"iteration": i, "epoch": 0, "loss": 1.0, "attn_fg": 0.1 * i} for i in range(1, 4)]
    if by_epoch:
        records += [
            {"iteration": 3, "epoch_end": 0, "epoch_attn_fg": 0.2},
            {"iteration": 6, "epoch_end": 1, "epoch_attn_fg": 0.4},
        ]
    series, xlabel = diagnostic_series(records)
    assert list(series) == ["attn_fg"]  # losses are not diagnostics
    xs, ys = series["attn_fg"]
    if by_epoch:
        assert (xlabel, xs, ys) == ("epoch", [0, 1], [0.2, 0.4])
    else:
        assert (xlabel, xs) == ("iteration", [1, 2, 3]) and np.allclose(ys, [0.1, 0.2, 0.3])
