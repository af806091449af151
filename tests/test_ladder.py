"""The stage ladder: RUN/ladder.json round trip and the rows the bench and the report print."""

from __future__ import annotations

from tools.report.ladder import Ladder, LadderStep, cluster_summary, read_ladder, write_ladder
from tools.report.ladder_rows import MASK_QUALITY, cluster_rows, ladder_rows, seed_rows


def _ladder(pseudo: float, final: float | None) -> Ladder:
    steps = [
        LadderStep("all background", 9.0, 0.0),
        LadderStep("pseudo-labels with saliency", pseudo, None, "t = 0.70"),
        LadderStep("+ finetune (last_layer head)", final, 30.0 if final is not None else None),
    ]
    return Ladder("make bench-pipeline", steps, {"with saliency": {"nmi": 0.5}}, seed=1)


def test_ladder_json_round_trips(tmp_path):
    ladder = _ladder(12.0, 15.5)
    path = write_ladder(tmp_path, ladder)
    assert path == tmp_path / "ladder.json"
    assert read_ladder(tmp_path) == ladder
    assert read_ladder(tmp_path / "missing") is None


def test_each_row_shows_the_change_from_the_last_scored_step():
    ladder = _ladder(12.0, None)
    ladder.steps.append(LadderStep("+ refine (SAM voting)", 10.0, 40.0))
    assert ladder_rows(ladder) == [
        ["all background", "9.00", "0.00", "", ""],
        ["pseudo-labels with saliency", "12.00", "-", "+3.00", "t = 0.70"],
        ["+ finetune (last_layer head)", "-", "-", "", ""],
        [
            "+ refine (SAM voting)",
            "10.00",
            "40.00",
            "-2.00",
            "",
        ],  # against 12.00: the step without score skipped
    ]


def test_cluster_rows_keep_only_metrics_some_run_reports():
    clusters = {
        "with saliency": cluster_summary({"nmi": 0.5, "cluster_accuracy": 0.75, "curve": [1, 2]}),
        "without saliency": cluster_summary({"nmi": 0.25, "no_attention": {"nmi": 0.125}}),
    }
    header, rows = cluster_rows(clusters)
    assert header == ["", "with saliency", "without saliency"]
    assert rows == [
        ["cluster accuracy", "0.750", "-"],
        ["NMI", "0.500", "0.250"],
        ["NMI without attention", "-", "0.125"],
    ]
    assert cluster_rows(clusters, MASK_QUALITY)[1] == []


def test_seed_rows_end_with_mean_and_spread_of_each_step():
    header, rows = seed_rows({1: _ladder(12.0, 15.0), 2: _ladder(14.0, 19.0), 3: _ladder(10.0, None)})
    assert header == ["seed", "all background", "pseudo-labels with saliency", "+ finetune (last_layer head)"]
    assert rows[2] == ["3", "9.00", "10.00", "-"]
    assert rows[3] == ["mean", "9.00", "12.00", "17.00"]
    assert rows[4] == ["spread (max - min)", "0.00", "4.00", "4.00"]
