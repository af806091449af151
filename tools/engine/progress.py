"""The training bar on rank 0: :func:`tools.progress.progress_bar` with loss terms, lr, img/s and ETA."""

from __future__ import annotations

import contextlib
import time

from rich.console import Console

from tools.progress import progress_bar


class TrainProgress:
    def __init__(
        self, title: str, total_iters: int, start_iter: int, enabled: bool, console: Console | None = None
    ):
        self._bar = progress_bar(
            title, total_iters, enabled, console=console, status=True, completed=start_iter, transient=False
        )
        self._stack = contextlib.ExitStack()
        self._advance = None
        self._last_time = time.perf_counter()
        self._images_since = 0

    def __enter__(self) -> TrainProgress:
        self._advance = self._stack.enter_context(self._bar)
        return self

    def __exit__(self, *exc) -> None:
        self._stack.__exit__(*exc)

    def advance(self, images: int) -> None:
        self._images_since += images
        self._advance(1)

    def images_per_second(self) -> float:
        now = time.perf_counter()
        rate = self._images_since / max(now - self._last_time, 1e-9)
        self._last_time, self._images_since = now, 0
        return rate

    def show(self, epoch: int, lr: float, metrics: dict[str, float], img_s: float) -> None:
        terms = " ".join(f"{k}={v:.4f}" for k, v in metrics.items())
        self._advance(0, status=f"ep {epoch} {terms} lr={lr:.3g} {img_s:.1f} img/s")
