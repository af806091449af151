"""The run owns its config: the first command writes RUN/config.yaml, later ones read it, a different
--preset is refused, --set may change only the command's own sections (recorded), and a bad value fails
before any checkpoint or network exists."""

from __future__ import annotations

import pytest
import yaml
from click.testing import CliRunner

from luss_cli.main import cli
from tools.config.loader import load_config
from tools.config.run_config import (
    RunConfigError,
    flat_items,
    read_config_history,
    read_run_config,
    record_run_config,
    resolve_run_config,
)
from tools.config.validate import InvalidConfigError
from tools.errors import LussError
from tools.rehearsal.runner import owned_sets
from tools.rehearsal.shrink import shrink_overrides
from tools.run_layout import RunLayout

PRESET = "luss50-pass"


def _pretrain_sets() -> list[str]:
    return owned_sets(shrink_overrides(PRESET))["pretrain"][1::2]


@pytest.fixture()
def run(tmp_path):
    """A luss50-pass run whose first command (pretrain, shrunk with --set) wrote RUN/config.yaml."""
    resolve_run_config(tmp_path / "run", "pretrain", PRESET, _pretrain_sets())
    return tmp_path / "run"


def test_first_command_writes_the_resolved_config_and_its_history(run):
    layout = RunLayout.at(run)
    saved = read_run_config(layout)
    assert flat_items(saved) == flat_items(load_config(PRESET, _pretrain_sets()))
    (entry,) = read_config_history(layout)
    assert entry["created"] and entry["command"] == "pretrain" and entry["preset"] == PRESET
    assert entry["sets"] == _pretrain_sets()


def test_a_later_command_without_preset_uses_the_run_and_records_only_its_override(run):
    layout = RunLayout.at(run)
    before = yaml.safe_load(layout.config_file.read_text())
    config = resolve_run_config(run, "cluster", None, ["cluster.nredo=3"])
    assert config.preset == PRESET and config.cluster.nredo == 3
    assert flat_items(config) == flat_items(load_config(PRESET, [*_pretrain_sets(), "cluster.nredo=3"]))
    after = yaml.safe_load(layout.config_file.read_text())
    before["cluster"]["nredo"] = 3
    assert after == before  # nothing else changed
    history = read_config_history(layout)
    assert [h["command"] for h in history] == ["pretrain", "cluster"]
    assert history[1]["changes"] == {"cluster.nredo": [load_config(PRESET).cluster.nredo, 3]}
    assert history[1]["sets"] == ["cluster.nredo=3"]
    # The same command again changes nothing and records nothing.
    resolve_run_config(run, "cluster", None, ["cluster.nredo=3"])
    assert len(read_config_history(layout)) == 2


def test_a_mismatching_preset_names_both_presets(run):
    before = RunLayout.at(run).config_file.read_text()
    with pytest.raises(RunConfigError, match=r"--preset demo .*preset luss50-pass"):
        resolve_run_config(run, "cluster", "demo")
    resolve_run_config(run, "cluster", PRESET)  # the run's own preset is fine
    assert RunLayout.at(run).config_file.read_text() == before


def test_set_outside_the_commands_sections_is_refused_unless_it_repeats_the_run(run):
    with pytest.raises(RunConfigError, match=r"model\.arch: 'resnet18' -> 'resnet50'.*cluster\.\*"):
        resolve_run_config(run, "cluster", None, ["model.arch=resnet50"])
    resolve_run_config(run, "finetune", None, _pretrain_sets())  # same values: no change, accepted
    assert len(read_config_history(RunLayout.at(run))) == 1


def test_a_library_caller_cannot_change_another_stages_settings(run):
    layout = RunLayout.at(run)
    config = read_run_config(layout)
    config.pretrain.loop.epochs += 1
    with pytest.raises(RunConfigError, match="pretrain.loop.epochs"):
        record_run_config(layout, config, "finetune")
    config = read_run_config(layout)
    config.finetune.head = "progressive"
    record_run_config(layout, config, "finetune")
    assert read_run_config(layout).finetune.head == "progressive"
    other = load_config("demo")
    with pytest.raises(RunConfigError, match="preset demo.*preset luss50-pass"):
        record_run_config(layout, other, "finetune")


def test_every_bad_value_is_listed_before_the_config_is_written(tmp_path):
    with pytest.raises(InvalidConfigError) as info:
        resolve_run_config(
            tmp_path / "run",
            "pretrain",
            "demo",
            ["pretrain.loop.epochs=0", "cluster.t_min=0.9", "cluster.t_max=0.5", "finetune.min_scale=0"],
        )
    text = str(info.value)
    for key in ("pretrain.loop.epochs", "cluster.t_min/t_max", "finetune.min_scale"):
        assert key in text
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("command", "sets", "expected"),
    [
        ("pretrain", ["pretrain.loop.epochs=0"], "pretrain.loop.epochs: must be >= 1"),
        ("pretrain", ["model.arch=resnet99"], "unknown model.arch 'resnet99'"),
        ("pretrain", ["model.arch=sam_vit_b_adapter"], "--sam-checkpoint sam_vit_b_01ec64.pth"),
        ("cluster", ["cluster.saliency.dino_checkpoint=/no/such.pth"], "/no/such.pth: no such file"),
    ],
)
def test_cli_refuses_a_bad_value_before_any_network_or_checkpoint(
    tmp_path, monkeypatch, command, sets, expected
):
    import tools.networks as networks

    def no_network(*args, **kwargs):
        raise AssertionError("a network was built before the config was validated")

    monkeypatch.setattr(networks, "build_network", no_network)
    data = tmp_path / "data"
    (data / "train" / "n01").mkdir(parents=True)
    run = tmp_path / "run"
    args = [command, "--data", str(data), "--run", str(run), *(a for s in sets for a in ("--set", s))]
    result = CliRunner().invoke(cli, args)
    assert isinstance(result.exception, LussError) and expected in str(result.exception)
    assert not (run / "config.yaml").exists()
    assert not list(tmp_path.rglob("*.pkl"))


def test_refine_reads_its_section_and_has_one_background_default(run):
    from luss_cli.cmd_refine import run_refine_defaults
    from tools.config.schema import RefineConfig

    assert RefineConfig().background == "erase" == load_config("luss50-sampass").refine.background
    resolve_run_config(run, "refine", None, ["refine.background=protect", "refine.vote_mode=sampass"])
    defaults = run_refine_defaults(run)
    assert (defaults.background, defaults.vote_mode, defaults.model_type) == ("protect", "sampass", "vit_b")
    assert run_refine_defaults(run.parent / "no-such-run") == RefineConfig()


def test_predict_refuses_a_run_without_config(tmp_path):
    data = tmp_path / "data"
    (data / "validation").mkdir(parents=True)
    result = CliRunner().invoke(cli, ["predict", "--run", str(tmp_path), "--data", str(data)])
    assert isinstance(result.exception, LussError)
    assert "config.yaml: this run has no config" in str(result.exception)


def test_a_run_saved_before_refine_had_a_background_field_still_loads(run):
    layout = RunLayout.at(run)
    raw = yaml.safe_load(layout.config_file.read_text())
    raw["refine"] = {"model_type": "vit_b", "vote_mode": "original", "background_may_erase": False}
    layout.config_file.write_text(yaml.safe_dump(raw))
    assert read_run_config(layout).refine.background == "erase"


def test_width_and_hue_are_checked_with_their_keys():
    from tools.config.validate import problems_of

    config = load_config("demo", ["model.width=0", "pretrain.crops.hue=0.7"])
    problems = problems_of(config)
    assert any(p.startswith("model.width:") for p in problems), problems
    assert any(p.startswith("pretrain.crops.hue:") for p in problems), problems
    negative = problems_of(load_config("demo", ["pretrain.crops.saturation=-0.5"]))
    assert any(p.startswith("pretrain.crops.saturation:") for p in negative), negative
    sets = ["pretrain.crops.hue=0.0", "pretrain.crops.saturation=0.0", "pretrain.crops.color_strength=1.0"]
    sound = load_config("demo", sets)
    assert not problems_of(sound)


def test_saliency_stage_is_a_resnet_stage_of_the_backbone_features():
    from tools.config.validate import problems_of

    assert load_config("demo").cluster.saliency.stage == 3
    assert not problems_of(load_config("demo", ["cluster.saliency.stage=4"]))
    # DINO / SAM saliency does not read it: the demo's stage 3 does not block them.
    assert not problems_of(load_config("demo", ["cluster.saliency.features=dino"]))
    for sets in (
        ["cluster.saliency.stage=2"],
        ["cluster.saliency.stage=3", "model.arch=sam_tiny_adapter"],
    ):
        problems = problems_of(load_config("demo", sets))
        assert any(p.startswith("cluster.saliency.stage:") for p in problems), (sets, problems)
