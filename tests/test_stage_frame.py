"""The stage frame: declared sub-steps in order, skipped when their marker exists, stopped by a step
that did not finish; rank-0-only steps; markers written atomically with the step's info."""

from __future__ import annotations

import json

from tools.engine.distributed import World
from tools.stages.frame import StageStep, mark_stage_done, run_steps


def test_steps_run_in_order_and_a_rerun_skips_the_finished_ones(tmp_path):
    calls = []

    def step(name):
        def run(resume):
            calls.append((name, resume))
            return {"n": len(calls)}

        return run

    steps = [StageStep(n, step(n), marker=tmp_path / f".{n}.done") for n in ("a", "b")]
    result = run_steps("demo", steps, resume=False, say=lambda m: None)
    assert result.completed and calls == [("a", False), ("b", False)]
    assert json.loads((tmp_path / ".b.done").read_text()) == {"step": "b", "n": 2}
    (tmp_path / ".b.done").unlink()
    messages = []
    again = run_steps("demo", steps, resume=True, say=messages.append)
    assert calls[2:] == [("b", True)] and again.skipped == ["a"] and again.info["a"] == {"step": "a", "n": 1}
    assert any("step a already done" in m for m in messages)


def test_an_unfinished_step_stops_the_stage_without_a_marker(tmp_path):
    ran = []
    steps = [
        StageStep("train", lambda resume: None, marker=tmp_path / ".train.done"),
        StageStep("after", lambda resume: ran.append(1) or {}, marker=tmp_path / ".after.done"),
    ]
    result = run_steps("demo", steps, resume=False, say=lambda m: None)
    assert not result.completed and not ran and not list(tmp_path.iterdir())


def test_main_only_steps_run_on_rank_0_only(tmp_path):
    ran = []
    step = StageStep("report", lambda resume: ran.append(1) or {"x": 1}, ranks="main")
    run_steps("demo", [step], False, lambda m: None, World(0, 1))
    run_steps("demo", [step], False, lambda m: None, World(1, 2))  # a non-zero rank, no launcher
    assert ran == [1]
    mark_stage_done(tmp_path / ".done", {"stage": "demo"}, World(1, 2))
    assert not (tmp_path / ".done").exists()
    mark_stage_done(tmp_path / ".done", {"stage": "demo"}, World(0, 1))
    assert json.loads((tmp_path / ".done").read_text()) == {"stage": "demo"}
