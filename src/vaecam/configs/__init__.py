"""Experiment configurations: one YAML file per experiment, with presets smoke | cpu | paper.

Each file has an ``about`` mapping (preset -> what it costs, printed when a command runs), an
``estimates`` mapping (preset -> seconds per stage, for the ETAs of ``vaecam reproduce``) and a
``presets`` mapping; a preset is a flat mapping of option name to value, checked by
:mod:`vaecam.configs.schema` like command-line options. The keys of the packaged presets are the
experiment's valid keys. A user's ``--config FILE`` has the same shape; each of its presets fills
in from the packaged preset of the same name, so a partial file changes only what it names.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from vaecam.configs.schema import validate_options
from vaecam.errors import ConfigError

PRESETS = ("smoke", "cpu", "paper")


@dataclass(frozen=True)
class Preset:
    """The checked options of one preset and what running it costs."""

    name: str
    options: dict[str, Any]
    about: str


def _read(text: str, where: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where} is not valid YAML ({' '.join(str(exc).split())[:200]})"
                          ) from exc
    if not isinstance(data, dict) or not isinstance(data.get("presets", {}), dict):
        raise ConfigError(f"{where} must hold a 'presets:' mapping of preset name to options")
    unknown = set(data) - {"presets", "about", "estimates"}
    if unknown:
        raise ConfigError(f"{where}: unknown top-level key '{sorted(unknown)[0]}'; a config has "
                          "'presets:' (and optionally 'about:' and 'estimates:')")
    return data


def packaged(experiment: str) -> dict[str, Any]:
    """The packaged YAML of ``experiment`` as data."""
    text = resources.files("vaecam.configs").joinpath(f"{experiment}.yaml").read_text()
    return _read(text, f"packaged config '{experiment}.yaml'")


def estimates(experiment: str, preset: str) -> dict[str, float]:
    """Seconds a stage of ``experiment`` takes with ``preset`` on this project's 2-core CPU (or
    the GPU for ``paper``), by stage kind (``train`` per seed, ``localize``, ``score``...)."""
    table = packaged(experiment).get("estimates", {}).get(preset, {})
    return {str(k): float(v) for k, v in table.items()}


def valid_keys(experiment: str) -> set[str]:
    """Every option name a preset of ``experiment`` may set."""
    return {key for options in packaged(experiment)["presets"].values() for key in options}


def load_preset(experiment: str, preset: str, config_file: Path | None = None) -> Preset:
    """Options of ``preset`` for ``experiment``, with ``config_file``'s values on top."""
    base = packaged(experiment)
    presets = base["presets"]
    if preset not in presets:
        raise ConfigError(f"preset '{preset}' not defined for '{experiment}'; choose one of: "
                          f"{', '.join(presets)}")
    options = dict(presets[preset])
    about = str(base.get("about", {}).get(preset, ""))
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"config file {path} not found")
        user = _read(path.read_text(), f"config file {path}")
        unknown = set(user["presets"]) - set(presets)
        if unknown:
            raise ConfigError(f"config file {path}: unknown preset '{sorted(unknown)[0]}'; name "
                              f"presets {', '.join(presets)} (each fills from the packaged one)")
        chosen = user["presets"].get(preset) or {}
        if not isinstance(chosen, dict):
            raise ConfigError(f"config file {path}: preset '{preset}' must be a mapping")
        options.update(validate_options(chosen, valid_keys(experiment),
                                        f"config file {path}, preset {preset}: "))
        about = f"{about} (with {path.name})" if about else path.name
    checked = validate_options(options, valid_keys(experiment),
                               f"preset {preset} of {experiment}: ")
    return Preset(preset, checked, about)
