"""Experiment configurations: one YAML file per experiment, with presets smoke | cpu | paper.

Each file has a ``presets`` mapping; a preset is a flat mapping of option name to value. The
CLI starts from the chosen preset and lets explicit command-line options override it.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from vaecam.errors import ConfigError

PRESETS = ("smoke", "cpu", "paper")


def load_preset(experiment: str, preset: str, config_file: Path | None = None) -> dict[str, Any]:
    """Options of ``preset`` from the packaged YAML of ``experiment`` (or ``config_file``)."""
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"config file {path} not found")
        text = path.read_text()
    else:
        text = resources.files("vaecam.configs").joinpath(f"{experiment}.yaml").read_text()
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config for '{experiment}' is not valid YAML: {exc}") from exc
    presets = data.get("presets", {})
    if preset not in presets:
        raise ConfigError(
            f"preset '{preset}' not defined for '{experiment}'; choose one of: "
            f"{', '.join(presets) or 'none'}"
        )
    return dict(presets[preset] or {})
