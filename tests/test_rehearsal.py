"""The preset rehearsal (part of `make rehearsal`): real presets, architectures intact, shrunk through
--set, on odd ImageNet-like image sizes, under mpirun -np 2 on the CPU, to a zip `pack --check` accepts.

`make rehearsal` also runs luss300 and luss50-sampass's SAM voting (a full ViT-B at 1024 px per image,
minutes on two cores); SAM voting under mpirun is covered here by tests/test_stages_mpi.py."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from tools.config.loader import load_config
from tools.config.run_config import OWNED_SECTIONS, flat_items, read_config_history, read_run_config
from tools.rehearsal.dataset import ODD_SIZES, odd_sized_dataset
from tools.rehearsal.runner import format_table, rehearse
from tools.rehearsal.shrink import shrink_overrides
from tools.run_layout import RunLayout

pytestmark = [pytest.mark.slow, pytest.mark.jittor]


@pytest.fixture(scope="module")
def odd_data(tmp_path_factory):
    if shutil.which("mpirun") is None:
        pytest.skip("OpenMPI is not installed (apt-get install openmpi-bin libopenmpi-dev)")
    return odd_sized_dataset(tmp_path_factory.mktemp("rehearsal") / "data")


def test_shrinking_keeps_the_method():
    for preset in ("luss50-pass", "luss50-sampass", "luss300"):
        original, shrunk = load_config(preset), load_config(preset, shrink_overrides(preset))
        assert shrunk.model == original.model
        for section in ("pretrain", "pixel_attention", "finetune"):
            a, b = getattr(original, section), getattr(shrunk, section)
            assert b.loop.optim.larc == a.loop.optim.larc
            assert b.loop.optim.base_lr == a.loop.optim.base_lr
        assert (shrunk.pretrain.swav_weight, shrunk.pretrain.d2s_weight, shrunk.pretrain.p2p_weight) == (
            original.pretrain.swav_weight,
            original.pretrain.d2s_weight,
            original.pretrain.p2p_weight,
        )
        assert shrunk.pretrain.shallow_stages == original.pretrain.shallow_stages
        assert shrunk.finetune.head == original.finetune.head
        assert shrunk.finetune.freeze_backbone == original.finetune.freeze_backbone
        assert shrunk.cluster.saliency.enabled == original.cluster.saliency.enabled
        assert shrunk.cluster.saliency.features == original.cluster.saliency.features


def test_dataset_has_imagenet_sizes(odd_data):
    sizes = {Image.open(p).size for p in odd_data.glob("validation/*/*.JPEG")}
    sizes |= {Image.open(p).size for p in odd_data.glob("test/*/*.JPEG")}
    assert sizes <= set(ODD_SIZES) and (500, 375) in sizes and (333, 500) in sizes
    for mask in odd_data.glob("validation-segmentation/*/*.png"):
        image = odd_data / "validation" / mask.parent.name / f"{mask.stem}.JPEG"
        assert Image.open(mask).size == Image.open(image).size


@pytest.mark.parametrize("preset", ["luss50-pass", "luss50-sampass"])
def test_preset_rehearsal_reaches_a_checked_zip(preset, odd_data, tmp_path):
    result = rehearse(preset, odd_data, tmp_path, ranks=2, timeout=900, refine=False, say=lambda m: None)
    with zipfile.ZipFile(result.zip_path) as zf:
        names = zf.namelist()
    assert "match.json" in names and "method.txt" in names
    assert sum(n.endswith(".png") for n in names) == len(list(odd_data.glob("test/*/*.JPEG")))
    assert [s.stage for s in result.stages][-1] == "pack --check"
    _check_the_run_kept_its_config(preset, tmp_path / preset / "run")
    print(f"\n{format_table([result])}")
    shutil.rmtree(tmp_path)  # the SAM rehearsal leaves about 4 GB of checkpoints and weights


def _check_the_run_kept_its_config(preset: str, run):
    """Later stages ran without --preset: they used the run's config, and changed only their own
    sections, each change recorded in RUN/config-history.jsonl."""
    layout = RunLayout.at(run)
    sets = shrink_overrides(preset)
    saved, expected = flat_items(read_run_config(layout)), flat_items(load_config(preset, sets))
    paths = ("model.sam_checkpoint", "cluster.saliency.dino_checkpoint")  # --sam/--dino-checkpoint flags
    assert {k: v for k, v in saved.items() if k not in paths} == {
        k: v for k, v in expected.items() if k not in paths
    }
    assert all(saved[k] is None or Path(saved[k]).is_file() for k in paths)
    history = read_config_history(layout)
    assert history[0]["command"] == "pretrain" and history[0]["created"] and history[0]["preset"] == preset
    for entry in history[1:]:
        owned = OWNED_SECTIONS[entry["command"]]
        assert entry["changes"] and all(key.split(".")[0] in owned for key in entry["changes"])
    assert {e["command"] for e in history[1:]} <= {"cluster", "finetune", "predict"}
