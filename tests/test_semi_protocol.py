"""The semi-supervised protocol: `luss finetune --labels train-semi` trains on the train-semi masks (no
Stage 2), predictions are class ids with the identity match, and only `pack --protocol semi` takes them."""

from __future__ import annotations

import json

import pytest

from tools.config.loader import load_config
from tools.data.demo import DemoSpec, generate_demo_dataset
from tools.errors import DatasetError, SubmissionError
from tools.packing.pack import check_submission_zip, pack_submission
from tools.run_layout import RunLayout

jt = pytest.importorskip("jittor")

from models.build import create_backbone  # noqa: E402
from tools.engine.checkpoint import save_checkpoint  # noqa: E402
from tools.engine.state import model_state  # noqa: E402
from tools.stages.finetune import run_finetune  # noqa: E402
from tools.stages.predict import run_predict  # noqa: E402

SPEC = DemoSpec(classes=3, train_per_class=2, val_per_class=2, test_per_class=2, size=64, semi_per_class=2)
SEMI = [
    "model.arch=resnet18",
    "model.width=16",  # a ResNet-18 of stem width 16
    "finetune.labels=train-semi",
    "finetune.loop.epochs=2",
    "finetune.loop.batch_size=6",
    "finetune.loop.workers=0",
    "finetune.loop.checkpoint_freq=2",
    "finetune.crop_size=64",
    "predict.short_side=64",
]


@pytest.fixture()
def stage_1(tmp_path):
    """A pretrain-only run (Stage 1 = a freshly built narrow ResNet-18) and a demo dataset."""
    jt.set_global_seed(0)
    state = {f"backbone.{k}": v for k, v in model_state(create_backbone("resnet18", width=16)).items()}
    pretrain = tmp_path / "unsupervised"
    save_checkpoint(RunLayout.at(pretrain).final_checkpoint("pretrain"), {"model": state})
    return generate_demo_dataset(tmp_path / "d", SPEC, progress=False), pretrain


@pytest.mark.slow
def test_semi_run_trains_on_train_semi_and_packs_only_as_semi(stage_1, tmp_path):
    data, pretrain = stage_1
    run = tmp_path / "semi"
    config = load_config("demo", SEMI)
    result = run_finetune(config, data, run, say=lambda s: None, pretrain_run=pretrain)
    assert result.completed
    done = json.loads(RunLayout.at(run).done_marker("finetune").read_text())
    assert done["labels"] == "train-semi" and done["num_classes"] == 3
    assert not (run / "cluster").exists()  # no Stage 2
    quiet = {"progress": False, "say": lambda s: None, "workers": 1}
    val = run_predict(config.predict, data, run, "validation", **quiet)
    assert json.loads(val.match_file.read_text()) == {str(i): i for i in range(4)}
    assert json.loads((val.out_dir / "protocol.json").read_text())["protocol"] == "semi"
    test = run_predict(config.predict, data, run, "test", **quiet)
    out = tmp_path / "semi.zip"
    pack_submission(test.out_dir, data, None, out, protocol="semi")
    assert check_submission_zip(out, data, protocol="semi") == []
    with pytest.raises(SubmissionError) as info:
        pack_submission(test.out_dir, data, val.match_file, tmp_path / "u.zip", protocol="fully-unsupervised")
    assert any("made under the semi protocol" in p for p in info.value.problems)


def test_missing_train_semi_names_the_folder_and_the_fix(stage_1, tmp_path):
    _, pretrain = stage_1
    spec = DemoSpec(
        classes=2, train_per_class=2, val_per_class=1, test_per_class=0, size=32, semi_per_class=0
    )
    data = generate_demo_dataset(tmp_path / "no-semi", spec, progress=False)
    with pytest.raises(DatasetError, match=r"train-semi: missing.*luss prepare"):
        run_finetune(
            load_config("demo", SEMI), data, tmp_path / "r", say=lambda s: None, pretrain_run=pretrain
        )
