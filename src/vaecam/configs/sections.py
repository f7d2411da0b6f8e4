"""The sections of a preset: what training, localisation and scoring read.

A preset of a packaged config file nests its options under ``train:`` (what ``vaecam train``
reads), ``localize:`` (what ``vaecam localize`` and the demo figures read) and ``score:`` (what
``vaecam score`` reads), only the sections its experiment has. :class:`Layout` says which section
owns each option of an experiment, as the packaged presets nest them; :func:`flatten` reads a
nested preset (refusing an old flat one with one line that says how to convert it), and
:class:`ExperimentConfig` holds one experiment's checked options, section by section, built once
from the preset, a user's ``--config`` file and the command's own options.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar

from vaecam.configs.schema import OPTIONS, closest
from vaecam.errors import ConfigError

SECTIONS = ("train", "localize", "score")


@dataclass(frozen=True)
class Layout:
    """Which section owns each option of ``experiment`` (``owner``: option -> section)."""

    experiment: str
    owner: Mapping[str, str]

    @classmethod
    def of_presets(cls, experiment: str, presets: Mapping[str, Any]) -> Layout:
        """The layout of the packaged presets of ``experiment`` (nested mappings); an option
        nested under two sections is refused."""
        owner: dict[str, str] = {}
        for preset, sections in presets.items():
            where = f"packaged config '{experiment}.yaml', preset {preset}"
            for section, options in _sections(sections, where, SECTIONS, experiment).items():
                for key in options:
                    if owner.setdefault(key, section) != section:
                        raise ConfigError(f"packaged config '{experiment}.yaml': '{key}' is "
                                          f"under both '{owner[key]}:' and '{section}:'")
        if "seeds" in owner:
            owner["num_seeds"] = owner["seeds"]
        return cls(experiment, MappingProxyType(owner))

    @property
    def sections(self) -> tuple[str, ...]:
        """The sections the experiment's presets have, in the order of :data:`SECTIONS`."""
        return tuple(s for s in SECTIONS if s in self.owner.values())


def _sections(preset: Any, where: str, allowed: tuple[str, ...], experiment: str
              ) -> dict[str, Mapping[str, Any]]:
    """The sections of one nested preset (each one of ``allowed``); a flat preset (option names
    at its top) is refused with one line naming its flat keys and the file that nests them."""
    if not isinstance(preset, Mapping):
        raise ConfigError(f"{where} must be a mapping of sections ({', '.join(SECTIONS)})")
    others = [str(k) for k in preset if k not in allowed]
    flat = [k for k in others if k in OPTIONS]
    if flat:
        names = ", ".join(flat[:3]) + (", ..." if len(flat) > 3 else "")
        nests = " / ".join(f"'{s}:'" for s in allowed)
        raise ConfigError(f"{where}: flat preset keys ({names}) found; nest them under {nests} "
                          f"as in vaecam/configs/{experiment}.yaml")
    if others:
        raise ConfigError(f"{where}: unknown section '{others[0]}'{closest(others[0], allowed)};"
                          f" a preset of {experiment} has the sections {', '.join(allowed)}")
    sections = {}
    for section, options in preset.items():
        if not isinstance(options or {}, Mapping):
            raise ConfigError(f"{where}, section {section}: must be a mapping of option names "
                              "to values")
        sections[section] = options or {}
    return sections


def flatten(preset: Any, where: str, layout: Layout) -> dict[str, Any]:
    """The options of a nested preset as one mapping; an option under a section that does not
    own it is refused naming the one that does (unknown options are left to the schema)."""
    flat: dict[str, Any] = {}
    for section, options in _sections(preset, where, layout.sections,
                                      layout.experiment).items():
        for key, value in options.items():
            owner = layout.owner.get(key)
            if owner is not None and owner != section:
                raise ConfigError(f"{where}: '{key}' belongs under '{owner}:', not "
                                  f"'{section}:' (as in vaecam/configs/{layout.experiment}.yaml)")
            flat[key] = value
    return flat


@dataclass(frozen=True)
class SectionOptions(Mapping[str, Any]):
    """The checked options of one section, read-only; a mapping of option name to value."""

    values: Mapping[str, Any] = field(default_factory=dict)
    section: ClassVar[str] = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", MappingProxyType(dict(self.values)))

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)

    def as_options(self) -> dict[str, Any]:
        """A plain, mutable copy, for code that takes an options mapping."""
        return dict(self.values)


@dataclass(frozen=True)
class TrainOptions(SectionOptions):
    """What training reads: the model, the data it trains on, the optimiser, the seeds."""

    section: ClassVar[str] = "train"

    @property
    def seeds(self) -> list[int]:
        return [int(s) for s in self.values.get("seeds") or ()]


@dataclass(frozen=True)
class LocalizeOptions(SectionOptions):
    """What localisation reads: the maps, the attention grid, the test protocol, the bootstrap."""

    section: ClassVar[str] = "localize"

    @property
    def maps(self) -> str | None:
        return self.values.get("maps")


@dataclass(frozen=True)
class ScoreOptions(SectionOptions):
    """What scoring a trained model reads (dSprites: the disentanglement metrics' sizes)."""

    section: ClassVar[str] = "score"


_KINDS: dict[str, type[SectionOptions]] = {
    kind.section: kind for kind in (TrainOptions, LocalizeOptions, ScoreOptions)}


@dataclass(frozen=True)
class ExperimentConfig:
    """One experiment's options, built once: its sections, and ``run``: the options of the
    command that belong to no section (the preset's name, output folder, checkpoint...)."""

    experiment: str
    preset: str
    about: str
    layout: Layout
    train: TrainOptions = field(default_factory=TrainOptions)
    localize: LocalizeOptions = field(default_factory=LocalizeOptions)
    score: ScoreOptions = field(default_factory=ScoreOptions)
    run: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "run", MappingProxyType(dict(self.run)))

    @classmethod
    def of(cls, experiment: str, preset: str, about: str, layout: Layout,
           options: Mapping[str, Any]) -> ExperimentConfig:
        """The config holding flat ``options``, each in the section ``layout`` gives it."""
        return cls(experiment, preset, about, layout).with_overrides(options)

    def with_overrides(self, overrides: Mapping[str, Any]) -> ExperimentConfig:
        """A copy with ``overrides`` in place, each in its section (or in ``run``)."""
        parts = {s: dict(getattr(self, s)) for s in SECTIONS} | {"run": dict(self.run)}
        for key, value in overrides.items():
            parts[self.layout.owner.get(key, "run")][key] = value
        return ExperimentConfig(self.experiment, self.preset, self.about, self.layout,
                                *(_KINDS[s](parts[s]) for s in SECTIONS), parts["run"])

    def keys(self, section: str) -> frozenset[str]:
        """The options of ``section`` this config holds."""
        return frozenset(getattr(self, section))

    def as_options(self) -> dict[str, Any]:
        """Every option as one flat mapping, for code that takes an options mapping."""
        return {**self.train, **self.localize, **self.score, **self.run}
