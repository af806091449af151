"""A rich progress bar for training on rank 0: loss terms, lr, img/s and ETA; silent elsewhere."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


class TrainProgress:
    def __init__(
        self, title: str, total_iters: int, start_iter: int, enabled: bool, console: Console | None = None
    ):
        self.enabled = enabled
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"),
            TimeRemainingColumn(),
            console=console or Console(stderr=True),
            disable=not enabled,
            transient=False,
        )
        self._task = self._progress.add_task(title, total=total_iters, completed=start_iter, stats="")
        self._last_time = time.perf_counter()
        self._images_since = 0

    def __enter__(self) -> TrainProgress:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.__exit__(*exc)

    def advance(self, images: int) -> None:
        self._images_since += images
        self._progress.advance(self._task)

    def images_per_second(self) -> float:
        now = time.perf_counter()
        rate = self._images_since / max(now - self._last_time, 1e-9)
        self._last_time, self._images_since = now, 0
        return rate

    def show(self, epoch: int, lr: float, metrics: dict[str, float], img_s: float) -> None:
        terms = " ".join(f"{k}={v:.4f}" for k, v in metrics.items())
        self._progress.update(self._task, stats=f"ep {epoch} {terms} lr={lr:.3g} {img_s:.1f} img/s")
