"""Typed configuration: dataclasses per stage, presets as YAML in ``configs/``, ``--set`` overrides."""

from tools.config.loader import apply_overrides, config_to_dict, load_config, preset_names, save_config
from tools.config.schema import LussConfig

__all__ = ["LussConfig", "apply_overrides", "config_to_dict", "load_config", "preset_names", "save_config"]
