"""The run owns its config: ``RUN/config.yaml`` is resolved once, by the run's first command, and read by
every later one; ``RUN/config-history.jsonl`` records who set what.

* The first command of a run (no ``RUN/config.yaml`` yet) resolves ``--preset`` (``demo`` when not given)
  and ``--set``, validates every value (:func:`tools.config.validate.validate_config`) before any work, and
  writes the file.
* A later command loads it. A ``--preset`` other than the run's is an error naming both. ``--set`` may change
  only the command's own sections (:data:`OWNED_SECTIONS`): ``luss cluster --set cluster.nredo=10`` is
  recorded; ``luss cluster --set model.arch=resnet50`` is refused (the Stage-1 network exists already). A
  ``--set`` that repeats the run's value changes nothing and is accepted (``make`` passes one list to all).
* Library callers (the ladder, tests) hand a config to a stage; :func:`record_run_config` applies the same
  rule to it, so no path rewrites a run's settings behind its back.

Rank 0 writes; every rank reads and checks, so all ranks fail alike.
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from tools.atomic_io import atomic_write_text
from tools.config.loader import ConfigError, _build, apply_overrides, config_to_dict, load_config, save_config
from tools.config.schema import LussConfig
from tools.run_layout import RunLayout

DEFAULT_PRESET = "demo"

# The config sections each command may change once the run exists (its own settings).
OWNED_SECTIONS: dict[str, tuple[str, ...]] = {
    "pretrain": ("model", "pretrain"),
    "cluster": ("cluster", "pixel_attention"),
    "finetune": ("finetune",),
    "predict": ("predict",),
    "refine": ("refine",),
    "distance": (),
}


class RunConfigError(ConfigError):
    """A command's preset or overrides contradict the run's saved config."""


def flat_items(config: LussConfig) -> dict[str, Any]:
    """``{"pretrain.loop.epochs": 12, ...}``: every leaf value of ``config`` under its dotted key."""
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        else:
            out[prefix] = value

    walk("", config_to_dict(config))
    return out


def config_changes(old: LussConfig, new: LussConfig) -> dict[str, tuple[Any, Any]]:
    """``{dotted key: (old, new)}`` for every value that differs."""
    a, b = flat_items(old), flat_items(new)
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def _section(key: str) -> str:
    return key.split(".", 1)[0]


def read_run_config(layout: RunLayout) -> LussConfig | None:
    """The run's saved config, typed (``None`` when the run has none yet)."""
    path = layout.config_file
    if not path.is_file():
        return None
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc}). Restore it, or start a new --run.") from exc
    refine = raw.get("refine")
    if isinstance(refine, dict):  # never read by any luss; the CLI's erase is what ran
        refine.pop("background_may_erase", None)
    return _build(LussConfig, raw, str(path))


def preset_name(preset: str) -> str:
    """The name a preset (or a YAML file) gives its config's ``preset`` field."""
    return load_config(preset).preset


def check_preset(layout: RunLayout, saved: LussConfig, preset: str | None) -> None:
    if preset is None:
        return
    asked = preset_name(preset)
    if asked != saved.preset:
        raise RunConfigError(
            f"--preset {asked} does not match this run: {layout.config_file} was made with preset "
            f"{saved.preset}. Leave --preset out (later commands use the run's config), or start a new "
            "--run for a different preset."
        )


def check_owned(command: str, changes: dict[str, tuple[Any, Any]], layout: RunLayout, preset: str) -> None:
    """Refuse changes outside ``command``'s own sections of an existing run."""
    owned = OWNED_SECTIONS.get(command, ())
    foreign = {k: v for k, v in changes.items() if _section(k) not in owned}
    if not foreign:
        return
    listed = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in list(foreign.items())[:5])
    may = ", ".join(f"{s}.*" for s in owned) or "nothing"
    raise RunConfigError(
        f"{command} would change settings of this run that belong to other stages ({listed}); "
        f"{layout.config_file} (preset {preset}) keeps them. `luss {command}` may change only {may}. "
        "Start a new --run to change them."
    )


def record_run_config(
    layout: RunLayout, config: LussConfig, command: str, overrides: Sequence[str] = ()
) -> LussConfig:
    """Validate ``config``, check it against the run's saved config and record it (rank 0 writes).

    No saved config: ``config`` becomes the run's. Otherwise it may differ only in ``command``'s own
    sections; the differences are written and appended to the history. Returns ``config``.
    """
    from tools.config.validate import validate_config
    from tools.engine.distributed import env_world

    validate_config(config, command)
    saved = read_run_config(layout)
    main = env_world().is_main
    if saved is None:
        if main:
            save_config(config, layout.config_file)
            _append_history(layout, command, config.preset, overrides, created=True)
        return config
    changes = config_changes(saved, config)
    if "preset" in changes:
        raise RunConfigError(
            f"{command} got a config of preset {config.preset}, but {layout.config_file} belongs to "
            f"preset {saved.preset}. Start a new --run for another preset."
        )
    check_owned(command, changes, layout, saved.preset)
    if changes and main:
        save_config(config, layout.config_file)
        _append_history(layout, command, config.preset, overrides, changes=changes)
    return config


def resolve_run_config(
    run_dir: str | Path,
    command: str,
    preset: str | None = None,
    overrides: Sequence[str] = (),
    base_run: str | Path | None = None,
) -> LussConfig:
    """The config ``command`` runs with on ``run_dir``, validated and recorded before any work.

    ``base_run``: a new run starts from that run's config instead of a preset (``luss finetune
    --pretrain-from``).
    """
    layout = RunLayout.at(run_dir)
    saved = read_run_config(layout)
    if saved is not None:
        check_preset(layout, saved, preset)
        config = apply_overrides(copy.deepcopy(saved), list(overrides))
        check_owned(command, config_changes(saved, config), layout, saved.preset)
    else:
        base = read_run_config(RunLayout.at(base_run)) if base_run is not None and preset is None else None
        if base is not None:
            config = apply_overrides(base, list(overrides))
        else:
            config = load_config(preset or DEFAULT_PRESET, list(overrides))
    return record_run_config(layout, config, command, overrides)


def load_run_config(run_dir: str | Path, command: str) -> LussConfig:
    """The saved config of a run a command only reads (predict, distance): an error when there is none."""
    layout = RunLayout.at(run_dir)
    saved = read_run_config(layout)
    if saved is None:
        raise ConfigError(
            f"{layout.config_file}: this run has no config. `luss {command}` uses the config of the run's "
            "training stages: run `luss pretrain --run RUN ...` first (or pass the run that holds them)."
        )
    return saved


def _append_history(
    layout: RunLayout,
    command: str,
    preset: str,
    overrides: Sequence[str],
    created: bool = False,
    changes: dict[str, tuple[Any, Any]] | None = None,
) -> None:
    entry: dict[str, Any] = {
        "saved_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "preset": preset,
        "sets": list(overrides),
    }
    if created:
        entry["created"] = True
    if changes:
        entry["changes"] = {k: [old, new] for k, (old, new) in changes.items()}
    path = layout.config_history_file
    lines = path.read_text() if path.is_file() else ""
    atomic_write_text(path, lines + json.dumps(entry, default=str) + "\n")


def read_config_history(layout: RunLayout) -> list[dict[str, Any]]:
    """The run's config history, oldest first (``[]`` for a run made before it existed)."""
    path = layout.config_history_file
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
