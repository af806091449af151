"""One command at a time per run folder: ``RUN/.lock`` names the process that holds the run.

A second ``luss`` command on the same run stops with an error naming the holder instead of writing
beside it. The lock is removed on every exit Python sees (return, error, Ctrl-C; SIGTERM in training,
which turns it into Ctrl-C). A lock left by a process that could not clean up (SIGKILL, SIGTERM outside
training, a crash, a reboot) is stale and taken over by the next command: its process id is not
running any more, or runs a different process (its start time, from ``/proc/<pid>/stat``, differs).
Taking the lock also removes the temporary files of atomic writes that a killed command left behind.
No signal handler is installed for it: forked worker pools would inherit one. Under ``mpirun`` only
rank 0 holds it (the ranks of one job share the run).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from tools.errors import LussError

LOCK_NAME = ".lock"
_FRESH_S = 5.0  # an unreadable lock younger than this may still be being written by its holder


class RunInUseError(LussError):
    """Another live process holds the run folder."""


def _proc_stat(pid: int) -> list[str] | None:
    """Fields 3.. of ``/proc/<pid>/stat`` (state first), ``None`` where there is no such file."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()  # the name in (...) may hold spaces


def _started_at(pid: int) -> float:
    """When the process started (seconds since the epoch; Linux), else now."""
    ticks = _start_ticks(pid)
    try:
        lines = Path("/proc/stat").read_text().splitlines()
        boot = next(float(line.split()[1]) for line in lines if line.startswith("btime"))
    except (OSError, StopIteration, ValueError):
        return time.time()
    return time.time() if ticks is None else boot + ticks / os.sysconf("SC_CLK_TCK")


def remove_stale_temporaries(run_dir: Path, before: float) -> list[Path]:
    """Delete the ``.<name>.*.tmp`` files of atomic writes (``tools.atomic_io``) that a killed command
    left in ``run_dir``, older than ``before``: the lock holder's start, so nothing of a live rank."""
    stale = [p for p in run_dir.rglob(".*.tmp") if p.is_file() and p.stat().st_mtime < before]
    for path in stale:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return stale


def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), ``None`` where unknown."""
    fields = _proc_stat(pid)
    return int(fields[19]) if fields else None  # field 22


def _alive(pid: int, ticks: int | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    fields = _proc_stat(pid)
    if fields is None:
        return True  # not Linux: the pid exists, trust it
    if fields[0] in ("Z", "X"):
        return False  # killed, not yet reaped by its parent
    return ticks is None or int(fields[19]) == ticks  # a reused pid started later


def _holder(path: Path) -> dict | None:
    """The lock's record; ``None`` when it is stale (or vanished). Raises nothing."""
    try:
        record = json.loads(path.read_text())
        pid = int(record["pid"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        with contextlib.suppress(OSError):
            if time.time() - path.stat().st_mtime < _FRESH_S:
                return {"pid": "?", "command": "a luss command starting up", "host": socket.gethostname()}
        return None
    if record.get("host") != socket.gethostname():
        return record  # another machine's process: cannot be checked from here
    return record if _alive(pid, record.get("start_ticks")) else None


def _describe(record: dict) -> str:
    since = record.get("since")
    when = time.strftime(" since %Y-%m-%d %H:%M:%S UTC", time.gmtime(since)) if since else ""
    return f"`luss {record.get('command', '?')}` (pid {record.get('pid')} on {record.get('host')}{when})"


def _try_create(path: Path, record: dict) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as fh:
        json.dump(record, fh)
    return True


def acquire(run_dir: Path, command: str) -> Path | None:
    """Take ``RUN/.lock``; returns its path, or ``None`` when this process holds it already (nested)."""
    path = run_dir / LOCK_NAME
    run_dir.mkdir(parents=True, exist_ok=True)
    me = os.getpid()
    record = {
        "pid": me,
        "start_ticks": _start_ticks(me),
        "host": socket.gethostname(),
        "command": command,
        "since": time.time(),
    }
    for _ in range(3):
        if _try_create(path, record):
            return path
        holder = _holder(path)
        if holder is not None and holder.get("pid") == me and holder.get("host") == record["host"]:
            return None
        if holder is not None:
            raise RunInUseError(
                f"{run_dir} is in use by {_describe(holder)}: two commands writing one run would mix "
                f"their files. Wait for it to finish, or use another --run. If that process is gone "
                f"(a machine that crashed), delete {path}."
            )
        # Stale: move it aside under a unique name (atomic, so two takers cannot both delete a new lock).
        aside = path.with_name(f"{LOCK_NAME}.stale-{me}")
        with contextlib.suppress(FileNotFoundError):
            os.replace(path, aside)
            aside.unlink()
    raise RunInUseError(f"{path}: could not take the run lock (another command keeps taking it); retry.")


def release(path: Path) -> None:
    """Remove the lock if it is still this process's."""
    with contextlib.suppress(OSError, ValueError, KeyError):
        if int(json.loads(path.read_text())["pid"]) == os.getpid():
            path.unlink()


@contextlib.contextmanager
def run_lock(run_dir: str | os.PathLike[str], command: str, rank: int | None = None) -> Iterator[None]:
    """Hold ``RUN/.lock`` while the block runs (rank 0 only; ``rank`` defaults to the MPI launcher's)."""
    from tools.engine.distributed import env_world

    if (env_world().rank if rank is None else rank) != 0:
        yield
        return
    path = acquire(Path(run_dir), command)
    if path is not None:  # the run is ours alone now: what a killed writer left behind is stale
        # Another rank of this job needs seconds of imports before it writes anything.
        remove_stale_temporaries(Path(run_dir), _started_at(os.getpid()))
    try:
        yield
    finally:
        if path is not None:
            release(path)
