"""The fault matrix's smallest row, in the suite: `luss pretrain` killed with SIGKILL mid-run, rerun,
and every file of the run compared with an uninterrupted run of the same seed (`make bench-faults`
runs every stage with 3 kills each)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("jittor")
pytestmark = pytest.mark.slow

FAULTS = Path(__file__).resolve().parents[1] / "bench" / "faults.py"


def _faults():
    spec = importlib.util.spec_from_file_location("faults", FAULTS)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_pretrain_killed_mid_run_resumes_to_identical_files(tmp_path):
    faults = _faults()
    (outcome,) = faults.run_matrix(
        tmp_path, kills=1, only=["pretrain"], say=lambda s: None, window=(0.4, 0.6)
    )
    log = (tmp_path / "faults.log").read_text()
    assert outcome.reruns_ok, outcome.error + log[-3000:]
    assert outcome.landed == 1  # the kill met a running command
    assert outcome.differences == [] and outcome.compared == outcome.identical >= 5
    assert "Traceback" not in log
