"""Runtime set-up, done once by the CLI entry (never at import).

Jittor reads its settings from environment variables when it is first imported, so the device is
chosen here, before any ``import jittor``:

* CUDA when ``nvidia-smi -L`` lists a GPU and an ``nvcc`` runs (``LUSS_FORCE_CPU=1`` forces the CPU):
  ``use_cuda=1`` (Jittor's ``jt.flags.use_cuda`` at import) and ``nvcc_path`` set to that compiler;
* otherwise ``nvcc_path`` is empty (importing Jittor would fail probing, or try to download a CUDA);
* under ``mpirun`` each rank takes GPU ``local_rank % gpus``: Jittor's NCCL start-up calls
  ``cudaSetDevice(mpi_local_rank)``, and without NCCL the ``device_id`` variable does the same (only
  when the user set neither ``CUDA_VISIBLE_DEVICES`` nor ``device_id``, which are then respected);
* ``log_silent`` keeps Jittor's compile chatter off the user's terminal.

MPI preflight: a launcher that says world size > 1 while Jittor cannot join it (no ``mpicc``, or an
MPICH launcher Jittor does not recognise) would run N identical full jobs writing the same files; it
is one clear :class:`MpiSetupError` before any work.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

from tools.errors import LussError

NVCC_CANDIDATES = ("/usr/local/cuda/bin/nvcc", "/usr/bin/nvcc", "/opt/cuda/bin/nvcc")
JTCUDA_GLOB = "~/.cache/jittor/jtcuda/*/bin/nvcc"


class MpiSetupError(LussError):
    """The MPI launch cannot work with Jittor (no mpicc, MPICH, ranks without MPI)."""


@dataclass(frozen=True)
class DeviceChoice:
    device: str  # "cpu" or "cuda"
    gpu: int | None  # index of this rank's GPU among the visible ones
    reason: str

    def describe(self) -> str:
        return f"cuda:{self.gpu}" if self.device == "cuda" else "cpu"


@dataclass(frozen=True)
class RuntimeInfo:
    has_gpu: bool
    nvcc_path: str
    choice: DeviceChoice


_CHOICE: DeviceChoice | None = None


def mpi_env_size(env: Mapping[str, str]) -> int:
    return int(env.get("OMPI_COMM_WORLD_SIZE", env.get("PMI_SIZE", "1")))


def mpi_local_rank(env: Mapping[str, str]) -> int:
    for key in ("OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "LOCAL_RANK"):
        if key in env:
            return int(env[key])
    return 0


def count_gpus() -> int:
    """GPUs ``nvidia-smi -L`` lists (a toolkit alone is not enough); 0 without a working driver."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return 0
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return 0
    if out.returncode != 0:
        return 0
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))


def find_nvcc(env: Mapping[str, str]) -> str | None:
    """The ``nvcc`` Jittor would use (``nvcc_path``, PATH, usual places, its jtcuda), if it runs."""
    if "nvcc_path" in env:
        candidates = [env["nvcc_path"]] if env["nvcc_path"] else []
    else:
        found = shutil.which("nvcc")
        candidates = [*([found] if found else []), *NVCC_CANDIDATES]
        candidates += sorted(glob.glob(os.path.expanduser(JTCUDA_GLOB)))
    for path in candidates:
        if not os.path.isfile(path):
            continue
        try:
            ok = subprocess.run([path, "--version"], capture_output=True, timeout=30, check=False)
        except (OSError, subprocess.SubprocessError):
            continue
        if ok.returncode == 0:
            return path
    return None


def choose_device(env: Mapping[str, str], gpus: int, nvcc: str | None) -> DeviceChoice:
    """The device of this process: pure, so the decision is tested with the environment mocked."""
    if env.get("LUSS_FORCE_CPU") == "1":
        return DeviceChoice("cpu", None, "LUSS_FORCE_CPU=1")
    if gpus == 0:
        return DeviceChoice("cpu", None, "nvidia-smi lists no GPU")
    if nvcc is None:
        return DeviceChoice(
            "cpu",
            None,
            f"nvidia-smi lists {gpus} GPU(s) but no working nvcc was found (Jittor compiles its CUDA "
            "kernels with it): install the CUDA toolkit or set nvcc_path=/path/to/nvcc",
        )
    if env.get("CUDA_VISIBLE_DEVICES", "0").strip() in ("", "-1"):
        return DeviceChoice("cpu", None, "CUDA_VISIBLE_DEVICES hides every GPU")
    if "CUDA_VISIBLE_DEVICES" in env or "device_id" in env:
        return DeviceChoice("cuda", 0 if "CUDA_VISIBLE_DEVICES" in env else int(env["device_id"]), "user")
    local = mpi_local_rank(env) if mpi_env_size(env) > 1 else 0
    return DeviceChoice("cuda", local % gpus, f"local rank {local} of {gpus} GPU(s)")


def device_environment(env: Mapping[str, str], choice: DeviceChoice, nvcc: str | None) -> dict[str, str]:
    """Variables to set (only those the user has not set) so Jittor starts on ``choice``."""
    if choice.device == "cpu":
        return {k: v for k, v in {"nvcc_path": "", "use_cuda": "0"}.items() if k not in env}
    out = {"use_cuda": "1", "nvcc_path": nvcc or ""}
    if mpi_env_size(env) > 1 and "CUDA_VISIBLE_DEVICES" not in env:
        out["device_id"] = str(choice.gpu)
    return {k: v for k, v in out.items() if k not in env}


def mpi_preflight(env: Mapping[str, str], mpicc: str | None) -> None:
    """Refuse a launch where ranks exist but Jittor cannot join them (before any work is done)."""
    size = mpi_env_size(env)
    if size <= 1:
        return
    if "OMPI_COMM_WORLD_SIZE" not in env:
        raise MpiSetupError(
            f"the launcher started {size} ranks (PMI_SIZE={size}, MPICH or Intel MPI) but Jittor only "
            "joins OpenMPI jobs (it reads OMPI_COMM_WORLD_SIZE): every rank would train the whole job "
            "alone and write the same files. Install OpenMPI (apt-get install openmpi-bin "
            "libopenmpi-dev) and launch with its mpirun, e.g. `mpirun -np 4 --bind-to none luss ...`."
        )
    if env.get("use_mpi") == "0":
        raise MpiSetupError(
            f"use_mpi=0 is set but mpirun started {size} ranks: every rank would run the whole job and "
            "write the same files. Unset use_mpi, or run one process without mpirun."
        )
    if not mpicc:
        raise MpiSetupError(
            f"mpirun started {size} ranks but mpicc was not found: Jittor compiles its MPI module with "
            "it and without it runs every rank as a lone process writing the same files. Install "
            "libopenmpi-dev (apt-get install libopenmpi-dev), or set mpicc_path=/path/to/mpicc."
        )


def configure_runtime(verbose: bool = False) -> RuntimeInfo:
    """Set Jittor's environment before its first import. Respects values the user already set."""
    global _CHOICE
    mpicc = os.environ["mpicc_path"] if "mpicc_path" in os.environ else shutil.which("mpicc")
    mpi_preflight(os.environ, mpicc)
    forced = os.environ.get("LUSS_FORCE_CPU") == "1"
    gpus = 0 if forced else count_gpus()
    nvcc = find_nvcc(os.environ) if gpus else None
    choice = choose_device(os.environ, gpus, nvcc)
    for key, value in device_environment(os.environ, choice, nvcc).items():
        os.environ[key] = value
    if not verbose:
        os.environ.setdefault("log_silent", "1")
    _CHOICE = choice
    return RuntimeInfo(has_gpu=gpus > 0, nvcc_path=os.environ.get("nvcc_path", "<auto>"), choice=choice)


def device_choice() -> DeviceChoice:
    """The decision of :func:`configure_runtime` (made now if nothing configured the runtime yet)."""
    return _CHOICE if _CHOICE is not None else configure_runtime().choice


def import_jittor():
    """Configure the runtime (if the CLI has not), import Jittor on the chosen device and check MPI."""
    choice = device_choice()
    import jittor

    if choice.device == "cuda":
        if not jittor.has_cuda:
            raise LussError(
                f"a GPU was found and nvcc is at {os.environ.get('nvcc_path')}, but Jittor did not build "
                "its CUDA support (run with `luss -v` to see why), or set LUSS_FORCE_CPU=1 for the CPU."
            )
        jittor.flags.use_cuda = 1
    elif os.environ.get("use_cuda") != "1":
        jittor.flags.use_cuda = 0
    size = mpi_env_size(os.environ)
    if size > 1 and (jittor.mpi is None or not jittor.in_mpi or int(jittor.world_size) != size):
        raise MpiSetupError(
            f"the launcher started {size} ranks but Jittor's MPI is "
            f"{'missing' if jittor.mpi is None else f'a world of {jittor.world_size}'}: install "
            "libopenmpi-dev (mpicc) and launch with OpenMPI's mpirun."
        )
    return jittor


def format_status(stage: str, device: str, world, per_rank: int | str | None = None) -> str:
    """``<stage>: device cuda:0, rank 0/4, batch 16 per rank``: the first line every stage prints."""
    line = f"{stage}: device {device}, rank {world.rank}/{world.size}"
    if per_rank is not None:
        line += f", batch {per_rank} per rank" if isinstance(per_rank, int) else f", {per_rank} per rank"
    return line


def status_line(stage: str, global_batch: int | str | None = None) -> str:
    """:func:`format_status` of a Jittor stage; an int ``global_batch`` is split over the ranks."""
    from tools.engine.distributed import World

    jt = import_jittor()
    world = World(int(jt.rank), int(jt.world_size)) if jt.in_mpi else World(0, 1)
    device = device_choice().describe() if jt.flags.use_cuda else "cpu"
    per_rank = global_batch // world.size if isinstance(global_batch, int) else global_batch
    return format_status(stage, device, world, per_rank)
