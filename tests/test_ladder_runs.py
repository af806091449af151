"""The ladder's sibling runs reuse the main run's finished stages; seeds reach every stage."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.config.loader import load_config, save_config
from tools.errors import LussError
from tools.stages.ladder import check_seed, ladder_run_folders, other_head, seed_overrides, sibling_run


def _finished_pretrain(run):
    (run / "pretrain" / "checkpoints").mkdir(parents=True)
    (run / "pretrain" / "checkpoints" / "final.pkl").write_bytes(b"weights")
    (run / "pretrain" / ".done").write_text("{}")


def test_sibling_run_holds_the_finished_stage_with_its_done_marker(tmp_path):
    run = tmp_path / "demo-run"
    _finished_pretrain(run)
    sibling = sibling_run(run, "nosal", ("pretrain",))
    assert sibling == tmp_path / "demo-run-nosal"
    assert (sibling / "pretrain" / ".done").is_file()
    assert (sibling / "pretrain" / "checkpoints" / "final.pkl").read_bytes() == b"weights"
    # Reused as it is: a second call copies nothing again.
    (sibling / "pretrain" / "checkpoints" / "final.pkl").unlink()
    sibling_run(run, "nosal", ("pretrain",))
    assert not (sibling / "pretrain" / "checkpoints" / "final.pkl").exists()


def test_a_copy_cut_short_is_redone(tmp_path):
    run = tmp_path / "demo-run"
    _finished_pretrain(run)
    (tmp_path / "demo-run-progressive" / "pretrain").mkdir(parents=True)  # no .done: interrupted
    sibling = sibling_run(run, "progressive", ("pretrain",))
    assert (sibling / "pretrain" / ".done").is_file()


def test_an_unfinished_stage_cannot_be_reused(tmp_path):
    (tmp_path / "demo-run" / "cluster").mkdir(parents=True)
    with pytest.raises(LussError, match="not finished"):
        sibling_run(tmp_path / "demo-run", "progressive", ("cluster",))


def test_seed_overrides_set_every_stage_seed():
    config = load_config("demo", seed_overrides(5))
    seeds = (config.pretrain.loop.seed, config.pixel_attention.loop.seed, config.finetune.loop.seed)
    assert seeds == (5, 5, 5) and config.cluster.seed == 5
    assert seed_overrides(None) == []


def test_a_run_of_another_seed_is_refused(tmp_path):
    save_config(load_config("demo", seed_overrides(3)), tmp_path / "config.yaml")
    check_seed(tmp_path, 3)
    with pytest.raises(LussError, match="seed 3, not 4"):
        check_seed(tmp_path, 4)


def test_heads_and_folders():
    assert other_head("last_layer") == "progressive" and other_head("progressive") == "last_layer"
    with pytest.raises(LussError):
        other_head("linear")
    names = [p.name for p in ladder_run_folders(Path("runs/demo"))]
    assert names == ["demo", "demo-nosal", "demo-last-layer", "demo-progressive"]
