"""The one progress helper (tools/progress.py) and the training bar built on it."""

from __future__ import annotations

import io

from rich.console import Console

from tools.engine.progress import TrainProgress
from tools.progress import progress_bar


def _console(terminal: bool) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=terminal, width=120), out


def test_a_disabled_bar_writes_nothing_even_on_a_terminal():
    console, out = _console(terminal=True)
    with progress_bar("off", 3, enabled=False, console=console, status=True, transient=False) as advance:
        advance(1, status="x")
    assert out.getvalue() == ""


def test_a_transient_bar_leaves_nothing_in_a_log():
    console, out = _console(terminal=False)
    with progress_bar("checking", 3, console=console) as advance:
        advance(3)
    assert out.getvalue() == ""


def test_a_status_bar_leaves_its_final_line_in_a_log():
    console, out = _console(terminal=False)
    with progress_bar("predict validation", 2, console=console, status=True, transient=False) as advance:
        advance(1, status="1.0 img/s")
        advance(1, status="2.5 img/s")
    assert out.getvalue().count("\n") == 1
    assert "predict validation" in out.getvalue() and "2/2 2.5 img/s" in out.getvalue()


def test_the_training_bar_starts_at_the_resumed_iteration_and_shows_the_terms():
    console, out = _console(terminal=False)
    with TrainProgress("pretrain", 10, 7, enabled=True, console=console) as bar:
        bar.advance(4)
        bar.show(1, 0.05, {"loss": 1.25}, 3.0)
    line = out.getvalue()
    assert "8/10" in line and "ep 1 loss=1.2500 lr=0.05 3.0 img/s" in line


def test_the_training_bar_is_silent_off_rank_0():
    console, out = _console(terminal=True)
    with TrainProgress("pretrain", 10, 0, enabled=False, console=console) as bar:
        bar.advance(4)
        bar.show(0, 0.1, {"loss": 1.0}, 1.0)
    assert out.getvalue() == ""
