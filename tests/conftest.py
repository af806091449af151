"""Test-session set-up: the same runtime configuration the CLI does, before anything imports Jittor."""

from __future__ import annotations

import os

os.environ.setdefault("LUSS_FORCE_CPU", "1")

from tools.runtime import configure_runtime  # noqa: E402

configure_runtime()
