"""Benchmark the two PyTorch-checkpoint readers side by side on the official SAM and DINO layouts.

    .venv/bin/python bench/bench_checkpoint_load.py [--repeats 3]

Readers: ``luss``'s own :func:`tools.checkpoints.torch_zip.load_torch_checkpoint` (an allow-list
unpickler; tensors become numpy arrays) and Jittor's ``jittor_utils.load_pytorch`` (what ``jt.load``
calls for ``.pth``/``.pt``/``.bin``; tensors become ``jt.Var``). A PyTorch process first writes the
checkpoints of ``bench/checkpoint_cases.py`` (SAM ViT-B 375 MB, DINO ViT-S/16 in fp32, fp16 and bf16,
DINO's training ``checkpoint.pth`` of about 705 MB, tensor views, every integer dtype, a storage with
one flipped byte, two pickles that run ``os.system``) into a temporary folder, with a digest of every
tensor. Then each load runs in a fresh process (no torch imported; the readers alternate): load
seconds (the median of ``--repeats`` processes; page cache warm), peak RSS increase during the load
(``VmHWM`` after resetting it through ``/proc/self/clear_refs``), RSS still held once loaded, whether
every tensor is bit-exact with the torch tensor (same shape and bytes; fp16/bf16 also count as exact
when widened to float32 exactly), the output dtypes, the other entries (ints, floats, strings,
``argparse.Namespace``), and for the files a reader must refuse whether it did: the flipped byte (or
were tensors silently wrong?), the pickles (or did the code run: its marker file appears?). Jittor's
lazy vars are synced inside the timed load. Prints one table; deletes the folder (about 1.3 GB) at
the end, also on an error. Never fails on time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from checkpoint_cases import CASES, MARKER, Case  # noqa: E402

from tools.progress import progress_bar  # noqa: E402

READERS = ("luss torch_zip", "jittor load_pytorch")
RESULT = "RESULT "  # a child's result line on stdout (Jittor may print other lines)
SMALL_FLOATS = ("float16", "bfloat16")  # widening these to float32 is exact


# ---- digests: the same tree walk for torch, numpy and Jittor leaves --------------------------------------


def _sha(array) -> str:
    import numpy as np

    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def tensor_digest(dtype: str, raw, as_float32=None) -> dict:
    """What a tensor leaf is compared by: dtype name, shape, bytes, and its float32 values if floating."""
    return {
        "dtype": dtype,
        "shape": [int(s) for s in raw.shape],
        "sha": _sha(raw),
        "f32": None if as_float32 is None else _sha(as_float32),
    }


def _leaves(obj: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from _leaves(value, f"{path}/{key}")
    elif isinstance(obj, list | tuple):
        for index, value in enumerate(obj):
            yield from _leaves(value, f"{path}[{index}]")
    elif type(obj).__name__ == "Namespace":  # argparse's, or torch_zip's stand-in
        yield from _leaves(vars(obj), f"{path}<Namespace>")
    else:
        yield path, obj


def digest_tree(obj: Any, as_tensor) -> dict[str, dict]:
    """``{path: digest}`` of every leaf; ``as_tensor(leaf)`` gives a tensor's digest, or None."""
    out = {}
    for path, leaf in _leaves(obj):
        out[path] = as_tensor(leaf) or {"value": repr(leaf)}
    return out


def torch_digest(leaf) -> dict | None:
    import torch

    if not isinstance(leaf, torch.Tensor):
        return None
    t = leaf.detach().contiguous()
    raw = t.view(torch.int16) if t.dtype == torch.bfloat16 else t
    small_float = t.is_floating_point() and t.element_size() <= 4
    return tensor_digest(
        str(t.dtype).removeprefix("torch."), raw.numpy(), t.float().numpy() if small_float else None
    )


def numpy_digest(dtype: str, array) -> dict:
    import numpy as np

    small_float = array.dtype.kind == "f" and array.dtype.itemsize <= 4
    return tensor_digest(dtype, array, array.astype(np.float32) if small_float else None)


def compare(reference: dict[str, dict], loaded: dict[str, dict]) -> dict:
    """Tensors bit-exact (and which differ), dtype changes, other entries equal."""
    tensors = [k for k, v in reference.items() if "sha" in v]
    exact, differ, dtypes = 0, [], set()
    for key in tensors:
        ref, got = reference[key], loaded.get(key)
        if got is None or "sha" not in got or got["shape"] != ref["shape"]:
            differ.append(key)
            continue
        same = got["sha"] == ref["sha"] and got["dtype"] == ref["dtype"]
        widened = ref["dtype"] in SMALL_FLOATS and got["f32"] is not None and got["f32"] == ref["f32"]
        if same or widened:
            exact += 1
        else:
            differ.append(key)
        dtypes.add(ref["dtype"] if got["dtype"] == ref["dtype"] else f"{ref['dtype']}->{got['dtype']}")
    others = [k for k, v in reference.items() if "value" in v]
    others_equal = sum(loaded.get(k) == reference[k] for k in others)
    extra = sorted(set(loaded) - set(reference))
    return {
        "tensors": len(tensors),
        "exact": exact,
        "differ": differ,
        "dtypes": sorted(dtypes),
        "others": len(others),
        "others_equal": others_equal,
        "extra": extra,
    }


# ---- the two child parts -------------------------------------------------------------------------------


def part_write(folder: Path) -> dict:
    """In a PyTorch process: write every case and ``reference.json`` (the torch tensors' digests)."""
    from checkpoint_cases import write_cases

    saved = write_cases(folder)
    reference = {name: digest_tree(obj, torch_digest) for name, obj in saved.items()}
    (folder / "reference.json").write_text(json.dumps(reference))
    return {"files": sorted(saved)}


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _reset_peak() -> None:
    """Make ``VmHWM`` (peak RSS) start again from the current RSS (Linux ``clear_refs`` 5)."""
    Path("/proc/self/clear_refs").write_text("5")


def _reader(name: str):
    """``(load(path) -> object with every tensor materialised, leaf -> digest or None)`` for a reader."""
    if name == "luss torch_zip":
        import numpy as np

        from tools.checkpoints.torch_zip import load_torch_checkpoint

        def digest(leaf):
            return numpy_digest(leaf.dtype.name, leaf) if isinstance(leaf, np.ndarray) else None

        return load_torch_checkpoint, digest
    from tools.runtime import configure_runtime

    configure_runtime()
    import jittor as jt
    from jittor_utils.load_pytorch import load_pytorch

    def load(path: str):
        result = load_pytorch(path)
        jt.sync_all(True)  # the vars are lazy: the load is only done once they are computed
        return result

    def digest(leaf):
        return numpy_digest(str(leaf.dtype), leaf.numpy()) if isinstance(leaf, jt.Var) else None

    return load, digest


def part_load(reader: str, path: str) -> dict:
    """In a fresh process: one load of ``path`` by ``reader``; seconds, memory, digests or the error."""
    load, digest = _reader(reader)
    _reset_peak()
    before = _status_kib("VmRSS")
    start = time.perf_counter()
    try:
        obj = load(path)
    except Exception as exc:  # the outcome to report: refused, or failed
        message = str(exc).strip().replace(f"{path}: ", "").replace(path, Path(path).name)
        return {"error": type(exc).__name__, "message": message}
    seconds = time.perf_counter() - start
    if obj is None:
        return {"error": "None", "message": "the reader returned None instead of the checkpoint"}
    peak_mib = (_status_kib("VmHWM") - before) / 1024
    held_mib = (_status_kib("VmRSS") - before) / 1024
    return {
        "seconds": seconds,
        "peak_mib": peak_mib,
        "held_mib": held_mib,
        "digest": digest_tree(obj, digest),
    }


# ---- the parent: run the children, compare, print -------------------------------------------------------


def _child(args: list[str], timeout: float = 900) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--part", *args]
    env = {**os.environ, "LUSS_FORCE_CPU": "1", "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT)]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"{' '.join(args[:2])} failed (exit {done.returncode}):\n" + "\n".join(tail))
    return json.loads(lines[-1][len(RESULT) :])


def _describe_differ(result: dict) -> str:
    text = f"{result['exact']}/{result['tensors']}"
    if result["differ"]:
        more = f" and {len(result['differ']) - 1} more" if len(result["differ"]) > 1 else ""
        text += f" (not: {result['differ'][0].lstrip('/')}{more})"
    return text


def _short(message: str, limit: int = 70) -> str:
    line = message.splitlines()[0] if message else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def load_runs(folder: Path, repeats: int) -> dict[tuple[str, str], list[dict]]:
    """``{(case file, reader): child results}``; the readers alternate, one fresh process per load."""
    runs: dict[tuple[str, str], list[dict]] = {}
    marker = folder / MARKER
    with progress_bar("loads", sum(1 if c.refuse else repeats for c in CASES) * len(READERS)) as advance:
        for case in CASES:
            for _ in range(1 if case.refuse else repeats):
                for reader in READERS:
                    marker.unlink(missing_ok=True)
                    result = _child(["load", reader, str(folder / case.file)])
                    result["ran_code"] = marker.exists()
                    runs.setdefault((case.file, reader), []).append(result)
                    advance(1)
    marker.unlink(missing_ok=True)
    return runs


def _refusal(case: Case, first: dict, reference: dict) -> str:
    if first["ran_code"]:
        return "[red]the pickled code RAN (its marker file was written)[/red]"
    if "error" in first:
        return f"[green]refused[/green]: {first['error']}: {_short(first['message'])}"
    if case.refuse == "corrupt":
        wrong = compare(reference, first["digest"])["differ"]
        return f"[red]loaded without an error: {len(wrong)} tensor(s) silently wrong[/red]"
    return "[yellow]loaded without an error, but its code did not run[/yellow]"


def case_row(case: Case, reader: str, runs: list[dict], reference: dict) -> list[str]:
    """One table row: ``[reader, load s, peak, held, tensors exact, dtypes, others, outcome]``."""
    first, blank = runs[0], ["-"] * 6
    if case.refuse:
        return [reader, *blank, _refusal(case, first, reference)]
    if "error" in first:
        return [reader, *blank, f"[red]failed[/red]: {first['error']}: {_short(first['message'])}"]
    result = compare(reference, first["digest"])
    seconds = statistics.median(r["seconds"] for r in runs)
    peak = statistics.median(r["peak_mib"] for r in runs)
    held = statistics.median(r["held_mib"] for r in runs)
    others = f"{result['others_equal']}/{result['others']}" if result["others"] else "-"
    exact = result["exact"] == result["tensors"] and not result["extra"]
    outcome = (
        "[green]ok[/green]" if exact and result["others_equal"] == result["others"] else "[red]differs[/red]"
    )
    return [
        reader,
        f"{seconds:.2f}",
        f"{peak:.0f}",
        f"{held:.0f}",
        _describe_differ(result),
        ", ".join(result["dtypes"]),
        others,
        outcome,
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Writes about 1.3 GB into a temporary folder (TMPDIR) and deletes it at the end.",
    )
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per load (median; default 3)")
    parser.add_argument("--part", nargs="+", help=argparse.SUPPRESS)  # a child: write DIR | load READER PATH
    args = parser.parse_args()
    if args.part:
        kind, *rest = args.part
        result = part_write(Path(rest[0])) if kind == "write" else part_load(*rest)
        print(RESULT + json.dumps(result), flush=True)
        return
    from rich.console import Console
    from rich.table import Table

    with tempfile.TemporaryDirectory(prefix="luss-bench-ckpt-") as tmp:
        folder = Path(tmp)
        print(f"writing the checkpoints with torch into {folder} ...", file=sys.stderr, flush=True)
        _child(["write", str(folder)])
        reference = json.loads((folder / "reference.json").read_text())
        sizes = {case.file: (folder / case.file).stat().st_size / 1e6 for case in CASES}
        runs = load_runs(folder, args.repeats)
    table = Table(title=f"PyTorch checkpoint readers (load s: median of {args.repeats} fresh processes)")
    columns = ("checkpoint", "MB", "reader", "load s", "peak +MiB", "held +MiB", "tensors bit-exact")
    for column in (*columns, "dtypes out", "other entries", "outcome"):
        table.add_column(
            column, justify="right" if column in ("MB", "load s", "peak +MiB", "held +MiB") else "left"
        )
    for case in CASES:
        for index, reader in enumerate(READERS):
            row = case_row(case, reader, runs[(case.file, reader)], reference.get(case.file, {}))
            first = (case.label, f"{sizes[case.file]:.1f}") if index == 0 else ("", "")
            table.add_row(*first, *row)
        table.add_section()
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
