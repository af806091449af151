"""The damaged-input corpus: `luss validate-data` names every broken file with its path and a fix, without
a traceback; the cheap check every stage runs first stops on what it can see without decoding."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tools.data.damaged_corpus import build_damaged_corpus
from tools.data.validate import require_usable_dataset, validate_dataset
from tools.errors import DatasetError

REPO = Path(__file__).resolve().parents[1]
FIX_WORDS = ("Fix:", "No action needed", "Re-encode")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return build_damaged_corpus(tmp_path_factory.mktemp("corpus") / "data")


def _sections(output: str) -> dict[str, list[str]]:
    """The ``- ...`` lines under the ``Errors (n):`` and ``Warnings (n):`` headings."""
    found: dict[str, list[str]] = {"error": [], "warning": []}
    current = None
    for line in output.splitlines():
        if line.startswith(("Errors (", "Warnings (")):
            current = "error" if line.startswith("Errors") else "warning"
        elif current and line.startswith("  - "):
            found[current].append(line[4:])
    return found


def test_cli_reports_every_damage_with_its_path_and_a_fix(corpus):
    root, damages = corpus
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONIOENCODING": "utf-8"}
    proc = subprocess.run(
        [sys.executable, "-m", "luss_cli", "validate-data", str(root), "--workers", "2"],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        timeout=120,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output
    assert "Traceback" not in output
    sections = _sections(proc.stdout)
    for damage in damages:
        lines = [line for line in sections[damage.level] if line.startswith(damage.path)]
        assert lines, f"{damage.kind}: {damage.path} is not among the {damage.level}s:\n{proc.stdout}"
        assert all(any(w in line for w in FIX_WORDS) for line in lines), (damage.kind, lines)


def test_only_the_listed_damage_is_found(corpus):
    """Nothing else is flagged: every error names a damaged file (no false alarms on the clean ones)."""
    root, damages = corpus
    report = validate_dataset(root, workers=1, progress=False)
    paths = tuple(d.path for d in damages)
    assert report.error_count == sum(d.level == "error" for d in damages)
    assert all(e.startswith(paths) for e in report.errors), report.errors


def test_stage_check_stops_on_what_a_listing_sees(corpus):
    root, _ = corpus
    with pytest.raises(DatasetError) as caught:
        require_usable_dataset(root, ["train", "validation"], "pretrain", say=lambda s: None)
    problems = "\n".join(caught.value.problems)
    assert "pretrain" in str(caught.value) and "luss validate-data" in str(caught.value)
    for cheap in ("empty image (0 bytes", "empty mask (0 bytes", "broken symlink", "class folder holds no"):
        assert cheap in problems, problems
    assert "truncated" not in problems  # decoding is validate-data's job, not every stage's


def test_stage_check_passes_a_clean_tree_quietly(tmp_path):
    from tools.data.demo import DemoSpec, generate_demo_dataset

    root = generate_demo_dataset(
        tmp_path / "d", DemoSpec(classes=2, train_per_class=2, size=24), progress=False
    )
    said: list[str] = []
    report = require_usable_dataset(root, ["train", "validation", "test"], "predict", say=said.append)
    assert report.ok and said == []
