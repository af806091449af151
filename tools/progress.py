"""One progress bar for every long job: drawing, checking, scoring, predicting, refining, training.

A bar is drawn on stderr (or the ``console`` given, so lines printed during the job interleave with
it) and only when ``enabled``: callers pass ``False`` on the non-zero MPI ranks and when asked for no
bar. A transient bar (the default) leaves nothing behind, and is not started at all when the console
is not a terminal (logs, pipes, CI), because a rich ``Progress`` there still prints a blank line. A
non-transient bar (predict, refine, training) stays on screen when done, and in a log it prints its
final state once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from rich.console import Console


class Advance(Protocol):
    def __call__(self, n: int = 1, status: str | None = None) -> None:
        """Count ``n`` more items done; ``status`` replaces the text after the count (status bars)."""


@contextlib.contextmanager
def progress_bar(
    label: str,
    total: int,
    enabled: bool = True,
    *,
    console: Console | None = None,
    status: bool = False,
    completed: int = 0,
    transient: bool = True,
) -> Iterator[Advance]:
    """Yield ``advance(n, status=None)``; shows ``label``, a bar and ``done/total``.

    Without ``status`` the bar ends with the elapsed time; with it, with a status text (rates, loss
    terms: whatever ``advance`` passes) and the time remaining. ``completed`` items count as done at
    the start (a resumed job).
    """
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = console or Console(stderr=True)
    if not enabled or (transient and not console.is_terminal):
        yield _no_bar
        return
    head = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn())
    tail = (TextColumn("{task.fields[status]}"), TimeRemainingColumn()) if status else (TimeElapsedColumn(),)
    with Progress(*head, *tail, console=console, transient=transient) as bar:
        task = bar.add_task(label, total=total, completed=completed, status="")

        def advance(n: int = 1, status: str | None = None) -> None:
            fields = {} if status is None else {"status": status}
            bar.update(task, advance=n, **fields)

        yield advance


def _no_bar(n: int = 1, status: str | None = None) -> None:
    pass
