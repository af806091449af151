"""The demo recipe learns (issue 13's direction test).

The built-in demo dataset and the ``demo`` preset as committed, with the preset's seed: pretrain ->
cluster -> finetune -> predict validation, through the library as `make submission` chains it. The
final validation mIoU must beat predicting all background by more than 15 points. The issue's full
targets (cluster accuracy, the ladder, three seeds) are `make bench-pipeline`'s, not a test's.

The margin is a direction, not a tuned number. Another CPU computes other floats, and over hundreds
of steps a training run diverges into another draw of the recipe (all background 7.86). With the
earlier Stage-1 optimiser (plain SGD, one warm-up epoch) the preset's seed scored 55.23 on one 2-core
AMD EPYC machine, 42.12 on a 2-core Intel Xeon one and 20.88 on a slower AMD EPYC one (`make
submission`, below this margin); seeds 1-3 scored 45-55 on the first and 27.66-67.53 on the second.
With PASS's LARC optimiser and 24 Stage-1 epochs the seed scored 29.90 on the slower machine and
21.74 on CI's Intel Xeon, where this test failed. With 36 epochs the seed scored 51.22 there (seeds
1 / 2: 68.70 / 71.56) and 42.27 on a third AMD EPYC machine (bench step 0.512 s), where a quarter of
its saliency maps were the clutter; with MaskCut's corner guard 50.27 there. With 48 epochs at twice
PASS's LARC rate (the preset now) it scored 74.58 on a fourth AMD EPYC machine (bench step 0.674 s;
seeds 1 / 2: 73.46 / 75.26). The margin asks for 22.86: a Stage 1 that fails the way the early draws
did still fails it, which is what the test is for.
"""

from __future__ import annotations

import pytest

pytest.importorskip("jittor")

from tools.config.loader import load_config  # noqa: E402
from tools.data.demo import generate_demo_dataset  # noqa: E402
from tools.evaluation.all_background import score_all_background  # noqa: E402

pytestmark = pytest.mark.slow

MARGIN = 15.0  # mIoU points above all background


def _quiet(message: str) -> None:
    pass


def test_the_demo_recipe_beats_all_background_by_15_points(tmp_path):
    from tools.stages.cluster import run_cluster
    from tools.stages.finetune import run_finetune
    from tools.stages.predict import run_predict
    from tools.stages.pretrain import run_pretrain

    data = generate_demo_dataset(tmp_path / "data", progress=False)
    run = tmp_path / "run"
    config = load_config("demo", [])
    run_pretrain(config, data, run, say=_quiet)
    report = run_cluster(config, data, run, say=_quiet)
    run_finetune(config, data, run, say=_quiet)
    outcome = run_predict(config.predict, data, run, "validation", progress=False, say=_quiet)
    floor = score_all_background(data).miou
    final = outcome.score.miou
    assert final > floor + MARGIN, (
        f"final validation mIoU {final:.2f} is not {MARGIN:g} points above all background ({floor:.2f}); "
        f"pseudo-labels scored {report.get('validation_miou')}"
    )
