"""Device choice and MPI preflight with the environment mocked (no GPU or launcher needed)."""

from __future__ import annotations

import pytest

from tools.engine.distributed import World
from tools.runtime import (
    DeviceChoice,
    MpiSetupError,
    choose_device,
    device_environment,
    format_status,
    mpi_preflight,
)

NVCC = "/usr/local/cuda/bin/nvcc"
RANK = {"OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_RANK": "3", "OMPI_COMM_WORLD_LOCAL_RANK": "3"}


def test_cuda_when_a_gpu_is_listed_and_nvcc_runs():
    choice = choose_device({}, gpus=1, nvcc=NVCC)
    assert (choice.device, choice.gpu) == ("cuda", 0)
    assert device_environment({}, choice, NVCC) == {"use_cuda": "1", "nvcc_path": NVCC}


@pytest.mark.parametrize(
    ("env", "gpus", "nvcc", "reason"),
    [
        ({"LUSS_FORCE_CPU": "1"}, 8, NVCC, "LUSS_FORCE_CPU=1"),
        ({}, 0, NVCC, "no GPU"),
        ({}, 2, None, "no working nvcc"),
        ({"CUDA_VISIBLE_DEVICES": ""}, 2, NVCC, "hides every GPU"),
    ],
)
def test_cpu_otherwise_and_jittor_is_kept_off_cuda(env, gpus, nvcc, reason):
    choice = choose_device(env, gpus, nvcc)
    assert choice.device == "cpu" and reason in choice.reason
    assert device_environment(env, choice, nvcc) == {"nvcc_path": "", "use_cuda": "0"}


def test_each_mpi_rank_takes_its_own_gpu_by_local_rank():
    assert choose_device(RANK, gpus=4, nvcc=NVCC).gpu == 3
    assert choose_device(RANK, gpus=2, nvcc=NVCC).gpu == 1  # more ranks than GPUs: round robin
    choice = choose_device(RANK, gpus=4, nvcc=NVCC)
    assert device_environment(RANK, choice, NVCC) == {"use_cuda": "1", "nvcc_path": NVCC, "device_id": "3"}
    assert choose_device({"OMPI_COMM_WORLD_LOCAL_RANK": "3"}, gpus=4, nvcc=NVCC).gpu == 0  # no world


def test_a_users_cuda_visible_devices_and_settings_are_respected():
    env = {**RANK, "CUDA_VISIBLE_DEVICES": "5", "nvcc_path": "/opt/nvcc", "use_cuda": "1"}
    choice = choose_device(env, gpus=1, nvcc="/opt/nvcc")
    assert (choice.device, choice.gpu) == ("cuda", 0)
    assert device_environment(env, choice, "/opt/nvcc") == {}  # no device_id: Jittor would restart


def test_status_line_names_device_rank_and_per_rank_batch():
    assert format_status("pretrain", "cuda:1", World(1, 4), 16) == (
        "pretrain: device cuda:1, rank 1/4, batch 16 per rank"
    )
    assert format_status("predict test", "cpu", World(0, 1), "1 image").endswith("1 image per rank")
    assert DeviceChoice("cuda", 2, "").describe() == "cuda:2"
    assert DeviceChoice("cpu", None, "").describe() == "cpu"


def test_mpi_preflight_refuses_launches_jittor_cannot_join():
    mpi_preflight({}, None)  # one process: nothing to check
    mpi_preflight(RANK, "/usr/bin/mpicc")
    with pytest.raises(MpiSetupError, match="mpicc was not found.*libopenmpi-dev"):
        mpi_preflight(RANK, None)
    with pytest.raises(MpiSetupError, match="MPICH or Intel MPI.*OpenMPI"):
        mpi_preflight({"PMI_SIZE": "2", "PMI_RANK": "0"}, "/usr/bin/mpicc")
    with pytest.raises(MpiSetupError, match="use_mpi=0"):
        mpi_preflight({**RANK, "use_mpi": "0"}, "/usr/bin/mpicc")


def test_the_cli_reports_a_wrong_launch_before_any_work(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from luss_cli.main import cli

    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setenv("PMI_RANK", "0")
    result = CliRunner().invoke(cli, ["validate-data", str(tmp_path)])
    assert isinstance(result.exception, MpiSetupError)
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_make_submissions_preflight_picks_the_device_before_importing_jittor(tmp_path):
    """`make train` runs `python -m tools.config.preflight` first; the registry it consults imports
    Jittor. On a machine with an nvcc on PATH but no GPU (no `nvidia-smi`), Jittor's own probe would take
    the nvcc and fail loading libcudart, so the preflight must choose the device as `luss` does."""
    import os
    import subprocess
    import sys

    pytest.importorskip("jittor")
    fake = tmp_path / "bin"
    fake.mkdir()
    nvcc = fake / "nvcc"
    nvcc.write_text("#!/bin/sh\necho 'Cuda compilation tools, release 12.4, V12.4.131'\n")
    nvcc.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("nvcc_path", "use_cuda", "LUSS_FORCE_CPU")}
    env["PATH"] = f"{fake}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(
        [sys.executable, "-m", "tools.config.preflight", "--preset", "demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
