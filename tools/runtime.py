"""Runtime set-up, done once by the CLI entry (never at import).

Jittor reads its settings from environment variables when it is first imported:
* ``nvcc_path``: on a machine without a usable CUDA GPU it must be empty, or importing Jittor fails
  while probing the system ``nvcc``.
* ``log_silent``: keeps Jittor's compile chatter off the user's terminal.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class RuntimeInfo:
    has_gpu: bool
    nvcc_path: str


def usable_gpu_present() -> bool:
    """True when ``nvidia-smi`` lists at least one GPU (a toolkit alone is not enough)."""
    if os.environ.get("LUSS_FORCE_CPU") == "1":
        return False
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


def configure_runtime(verbose: bool = False) -> RuntimeInfo:
    """Set Jittor's environment before its first import. Respects values the user already set."""
    has_gpu = usable_gpu_present()
    if not has_gpu:
        os.environ.setdefault("nvcc_path", "")
    if not verbose:
        os.environ.setdefault("log_silent", "1")
    return RuntimeInfo(has_gpu=has_gpu, nvcc_path=os.environ.get("nvcc_path", "<auto>"))


def import_jittor():
    """Configure the runtime (if the CLI has not) and return the ``jittor`` module."""
    if "log_silent" not in os.environ:
        configure_runtime()
    import jittor

    return jittor
