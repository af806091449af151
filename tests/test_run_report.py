"""RUN/report.html: one self-contained page from whatever a run holds."""

from __future__ import annotations

import json
import re
import shutil

from tools.data.demo import DemoSpec, generate_demo_dataset
from tools.report import write_run_report


def _fake_run(tmp_path):
    data = generate_demo_dataset(
        tmp_path / "data",
        DemoSpec(classes=3, train_per_class=1, val_per_class=2, test_per_class=0, size=48),
        False,
    )
    run = tmp_path / "run"
    (run / "pretrain").mkdir(parents=True)
    (run / "config.yaml").write_text("preset: demo\n")
    lines = [{"iteration": i, "epoch": 0, "lr": 0.1, "loss": 5.0 - i, "swav": 3.0 - i / 2} for i in range(4)]
    lines.append({"iteration": 3, "epoch_end": 0, "epoch_loss": 3.5, "epoch_swav": 2.2})
    (run / "pretrain" / "metrics.jsonl").write_text(
        "\n".join(json.dumps(x) for x in lines) + "\n{cut by a kill"
    )
    (run / "cluster").mkdir()
    curve = [{"t": t / 10, "miou": 10.0 + t} for t in range(5)]
    report = {"num_clusters": 3, "nmi": 0.5, "cluster_accuracy": 0.75, "threshold": 0.4, "curve": curve}
    (run / "cluster" / "report.json").write_text(json.dumps(report))
    # Perfect predictions: the GT PNGs themselves, with the identity match.
    predict = run / "predict" / "validation"
    shutil.copytree(data / "validation-segmentation", predict)
    (predict / "match.json").write_text(json.dumps({"0": 0, "1": 1, "2": 2, "3": 3}))
    return data, run


def test_report_has_every_section_and_no_external_reference(tmp_path):
    data, run = _fake_run(tmp_path)
    path = write_run_report(run, data, workers=1)
    page = path.read_text()
    assert path == run / "report.html"
    for heading in (
        "Resolved config",
        "Training stages",
        "Clustering and threshold sweep",
        "Validation scores",
    ):
        assert heading in page
    assert "cluster_accuracy" in page and "preset: demo" in page
    images = re.findall(r'alt="([^"]+)" src="data:image/png;base64,', page)
    assert images == ["pretrain curves", "threshold sweep", "per-class IoU", "overlays"]
    assert "not run yet" in page  # finetune has no metrics: said, not drawn
    assert not re.search(r"(src|href)=\"(http|file|/)", page)  # nothing outside the file
    # GT scored against itself (1000 ignored): every class 100 %.
    assert re.search(r"<th>miou</th><td>100</td>", page)


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
