"""Presets (YAML in ``configs/``) and ``key=value`` overrides mapped onto the typed dataclasses.

Every value is checked against its field's type, and an unknown key is an error that suggests the
closest real key, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from tools.atomic_io import atomic_write_text
from tools.config.schema import LussConfig
from tools.errors import LussError

PRESETS_DIR = Path(__file__).resolve().parents[2] / "configs"


class ConfigError(LussError):
    """A preset, config file or override does not fit the schema."""


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def _preset_path(preset: str) -> Path:
    candidate = Path(preset)
    if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
        return candidate
    path = PRESETS_DIR / f"{preset}.yaml"
    if not path.is_file():
        raise ConfigError(
            f"unknown preset {preset!r}. Known presets: {', '.join(preset_names())}; "
            "or pass the path of a YAML file."
        )
    return path


def load_config(preset: str = "demo", overrides: list[str] | tuple[str, ...] = ()) -> LussConfig:
    """Defaults <- preset YAML <- ``key=value`` overrides."""
    path = _preset_path(preset)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc}).") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level.")
    raw.setdefault("preset", path.stem)
    config = _build(LussConfig, raw, str(path))
    return apply_overrides(config, overrides)


def apply_overrides(config: LussConfig, overrides: list[str] | tuple[str, ...]) -> LussConfig:
    """Apply ``a.b.c=value`` strings (values parsed as YAML: ``5``, ``0.1``, ``[2, 6]``, ``true``)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value, e.g. pretrain.loop.epochs=5")
        key, text = item.split("=", 1)
        parts = key.strip().split(".")
        target: Any = config
        for depth, name in enumerate(parts):
            _check_field(type(target), name, ".".join(parts[:depth]) or "<root>")
            if depth == len(parts) - 1:
                hint = typing.get_type_hints(type(target))[name]
                value = _coerce(hint, yaml.safe_load(text), f"--set {key}")
                setattr(target, name, value)
            else:
                target = getattr(target, name)
                if not dataclasses.is_dataclass(target):
                    raise ConfigError(f"--set {key}: {'.'.join(parts[: depth + 1])} is not a section")
    return config


def config_to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def save_config(config: LussConfig, path: str | os.PathLike[str]) -> None:
    atomic_write_text(path, yaml.safe_dump(config_to_dict(config), sort_keys=False))


def read_saved_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A saved ``RUN/config.yaml`` as plain data, for reading a few keys (``{}`` when absent)."""
    path = Path(path)
    raw = yaml.safe_load(path.read_text()) if path.is_file() else None
    return raw if isinstance(raw, dict) else {}


def _check_field(cls: type, name: str, where: str) -> None:
    names = [f.name for f in dataclasses.fields(cls)]
    if name not in names:
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else f" Known keys: {', '.join(names)}."
        raise ConfigError(f"unknown config key {name!r} in {where}.{hint}")


def _build(cls: type, raw: dict[str, Any], where: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping for {cls.__name__}, got {raw!r}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in raw.items():
        _check_field(cls, name, where)
        kwargs[name] = _coerce(hints[name], value, f"{where}:{name}")
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    """Check ``value`` against a type hint, converting only lossless cases (int -> float)."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where}: {value!r} does not fit {hint}")
    if origin is typing.Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise ConfigError(f"{where}: expected one of {', '.join(map(repr, choices))}, got {value!r}")
        return value
    if origin is list:
        (item_type,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_coerce(item_type, v, where) for v in value]
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is bool and not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if hint in (int, float, str) and (not isinstance(value, hint) or isinstance(value, bool)):
        raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value
