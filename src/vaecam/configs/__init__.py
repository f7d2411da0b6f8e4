"""Experiment configurations: one YAML file per experiment, with presets smoke | cpu | paper.

Each file has an ``about`` mapping (preset -> what it costs, printed when a command runs), an
``estimates`` mapping (preset -> seconds per stage, for the ETAs of ``vaecam reproduce``) and a
``presets`` mapping, and a dataset of the localisation pipeline a ``command:`` block (its
command-line text, :mod:`vaecam.configs.commands`); a preset nests its options under the
sections ``train:``, ``localize:`` and ``score:`` that its experiment has
(:mod:`vaecam.configs.sections`), each option checked by :mod:`vaecam.configs.schema` like
command-line options. The keys of the packaged presets are the
experiment's valid keys, in the sections that own them. A user's ``--config FILE`` has the same
shape; each of its presets fills in from the packaged preset of the same name, so a partial file
changes only what it names. :func:`build_config` turns a preset (and a user's file) into one
:class:`~vaecam.configs.sections.ExperimentConfig`.

Seeds are a list (``seeds: [0, 1, 2]``) or a count (``num_seeds: 3``, the seeds 0 to 2); a bare
number under ``seeds`` is refused because it reads as either.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from vaecam.configs.schema import check_value, validate_options
from vaecam.configs.sections import ExperimentConfig, Layout, flatten
from vaecam.errors import ConfigError

PRESETS = ("smoke", "cpu", "paper")


@dataclass(frozen=True)
class Preset:
    """The checked options of one preset (flat), what running it costs, and the section of
    each option."""

    name: str
    options: dict[str, Any]
    about: str
    layout: Layout


def _read(text: str, where: str, require_presets: bool = False) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where} is not valid YAML ({' '.join(str(exc).split())})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("presets", {}), dict) or (
            require_presets and not data.get("presets")):
        raise ConfigError(f"{where} must hold a 'presets:' mapping of preset name to options, "
                          "e.g. 'presets: {cpu: {train: {max_epochs: 5}}}'")
    # command: (a packaged dataset's command-line text) is read from the packaged file only
    unknown = set(data) - {"presets", "about", "estimates", "command"}
    if unknown:
        raise ConfigError(f"{where}: unknown top-level key '{sorted(unknown)[0]}'; a config has "
                          "'presets:' (and optionally 'about:' and 'estimates:')")
    return data


def packaged(experiment: str) -> dict[str, Any]:
    """The packaged YAML of ``experiment`` as data (a copy the caller may change)."""
    return copy.deepcopy(_parsed(experiment))


@functools.cache
def _parsed(experiment: str) -> dict[str, Any]:
    """The packaged YAML parsed once: a plan reads it for every one of its stages."""
    text = resources.files("vaecam.configs").joinpath(f"{experiment}.yaml").read_text()
    return _read(text, f"packaged config '{experiment}.yaml'")


def estimates(experiment: str, preset: str) -> dict[str, float]:
    """Seconds a stage of ``experiment`` takes with ``preset`` on this project's 2-core CPU (or
    the GPU for ``paper``), by stage kind (``train`` per seed, ``localize``, ``score``...)."""
    table = packaged(experiment).get("estimates", {}).get(preset, {})
    return {str(k): float(v) for k, v in table.items()}


# Options whose ratio to the preset's value scales the training time (pixels: squared).
_WORK_SCALES = {"max_epochs": 1, "num_augmented": 1, "image_size": 2}


@dataclass(frozen=True)
class TrainingEstimate:
    """Estimated training time of merged options, and of their preset as packaged."""

    seconds: float
    per_seed: float
    seeds: int
    preset_seconds: float


def training_estimate(experiment: str, options: dict[str, Any]) -> TrainingEstimate:
    """Seconds that training with merged ``options`` should take: the preset's measured seconds
    per seed (``estimates:``), scaled by the seeds and by the ratio of epochs, images per epoch
    and pixels to the preset's values (an upper bound when ``max_steps`` stops it earlier)."""
    preset = load_preset(experiment, str(options["preset"]))
    measured = estimates(experiment, preset.name).get("train", 0.0)
    per_seed = measured
    for key, power in _WORK_SCALES.items():
        ours, theirs = options.get(key), preset.options.get(key)
        if isinstance(ours, (int, float)) and isinstance(theirs, (int, float)) and ours > 0 \
                and theirs > 0:
            per_seed *= (ours / theirs) ** power
    seeds = len(options.get("seeds") or [0])
    return TrainingEstimate(per_seed * seeds, per_seed, seeds,
                            measured * len(preset.options.get("seeds") or [0]))


@cache
def layout(experiment: str) -> Layout:
    """Which section owns each option of ``experiment``, as its packaged presets nest them."""
    return Layout.of_presets(experiment, packaged(experiment)["presets"])


def valid_keys(experiment: str) -> set[str]:
    """Every option name a preset of ``experiment`` may set (``num_seeds`` wherever ``seeds``)."""
    return set(layout(experiment).owner)


def resolve_seeds(options: dict[str, Any], where: str) -> dict[str, Any]:
    """``options`` with ``num_seeds: N`` turned into ``seeds: [0, ..., N-1]``; a bare number
    under ``seeds``, or both keys at once, is refused naming both."""
    options = dict(options)
    if "seeds" in options and not isinstance(options["seeds"], (list, tuple)):
        raise ConfigError(f"{where}seeds must be a list of seed numbers, e.g. seeds: "
                          f"[{options['seeds']!r}] for that one seed; for several seeds 0..N-1 "
                          "write num_seeds: N instead")
    if "num_seeds" in options:
        if "seeds" in options:
            raise ConfigError(f"{where}give either seeds (a list of seed numbers) or num_seeds "
                              "(how many, seeds 0..N-1), not both")
        options["seeds"] = list(range(check_value("num_seeds", options.pop("num_seeds"), where)))
    return options


def _read_file(path: Path) -> str:
    """The text of a user's config file; one-line errors for missing, unreadable, non-UTF-8."""
    if not path.is_file():
        raise ConfigError(f"config file {path} not found")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte "
                          f"{exc.object[exc.start:exc.start + 1]!r} at position {exc.start}); "
                          "save it as UTF-8") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path} ({exc.strerror or exc}); check its "
                          "permissions") from exc


def load_preset(experiment: str, preset: str, config_file: Path | None = None) -> Preset:
    """Options of ``preset`` for ``experiment``, with ``config_file``'s values on top."""
    base = packaged(experiment)
    presets = base["presets"]
    if preset not in presets:
        raise ConfigError(f"preset '{preset}' not defined for '{experiment}'; choose one of: "
                          f"{', '.join(presets)}")
    sections = layout(experiment)
    options = flatten(presets[preset], f"packaged config '{experiment}.yaml', preset {preset}",
                      sections)
    about = str(base.get("about", {}).get(preset, ""))
    if config_file is not None:
        path = Path(config_file)
        user = _read(_read_file(path), f"config file {path}", require_presets=True)
        unknown = set(user["presets"]) - set(presets)
        if unknown:
            raise ConfigError(f"config file {path}: unknown preset '{sorted(unknown)[0]}'; name "
                              f"presets {', '.join(presets)} (each fills from the packaged one)")
        chosen = user["presets"].get(preset) or {}
        if not isinstance(chosen, dict):
            raise ConfigError(f"config file {path}: preset '{preset}' must be a mapping")
        where = f"config file {path}, preset {preset}: "
        chosen = flatten(chosen, where.removesuffix(": "), sections)
        options.update(validate_options(resolve_seeds(chosen, where), valid_keys(experiment),
                                        where))
        about = f"{about} (with {path.name})" if about else path.name
    checked = validate_options(options, valid_keys(experiment),
                               f"preset {preset} of {experiment}: ")
    return Preset(preset, checked, about, sections)


def build_config(experiment: str, preset: str, config_file: Path | None = None
                 ) -> ExperimentConfig:
    """The options of ``preset`` for ``experiment`` (``config_file``'s on top), by section, with
    the preset's name among the run options."""
    loaded = load_preset(experiment, preset, config_file)
    return ExperimentConfig.of(experiment, preset, loaded.about, loaded.layout,
                               {**loaded.options, "preset": preset})
