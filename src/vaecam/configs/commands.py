"""The command-line face of each anomaly dataset, read from the ``command:`` block of its YAML.

A dataset of the shared localisation pipeline (:mod:`vaecam.experiments.anomaly`) needs no code
in the command-line package: its packaged YAML names the experiment spec and says how
``vaecam train <name>`` and ``vaecam localize <name>`` read in ``--help`` (the help line, the
description, the dataset's own options), and what ``train`` prints when it is done. Reading
YAML, not importing the experiment, keeps ``vaecam --help`` fast.

::

    command:
      experiment: vaecam.experiments.folder:FOLDER   # module:attribute of the spec
      train:
        help: one line for 'vaecam train --help'
        description: the paragraph of 'vaecam train <name> --help'
        done: "trained the conv VAE on {data}/train"  # str.format of the run's options
        options:
          - {flag: --data, required: true, help: "..."}
          - {flag: --num-augmented, group: augmentation, help: "..."}
      localize: {help: ..., description: ..., options: [...]}

Every option's type and check come from :data:`vaecam.configs.schema.OPTIONS`, by its name.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from vaecam.configs.schema import OPTIONS
from vaecam.errors import ConfigError


@dataclass(frozen=True)
class OptionText:
    """One dataset option of a command: its flag, help, whether it is required, and the
    ``--help`` group it is listed under (None: the command's own options)."""

    flag: str
    help: str
    required: bool = False
    group: str | None = None

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


@dataclass(frozen=True)
class VerbText:
    """How ``vaecam <verb> <dataset>`` reads in ``--help``, and (``train``) the line it prints
    when done."""

    help: str
    description: str
    options: tuple[OptionText, ...]
    done: str = ""


@dataclass(frozen=True)
class DatasetCommands:
    """The ``train`` and ``localize`` commands of one dataset and the spec that runs them."""

    name: str
    experiment: str  # "module:attribute" of its AnomalyExperiment
    train: VerbText
    localize: VerbText


def _verb(block: Any, where: str) -> VerbText:
    if not isinstance(block, dict) or not {"help", "description"} <= set(block):
        raise ConfigError(f"{where} needs 'help:' and 'description:'")
    options = []
    for entry in block.get("options", []):
        item = OptionText(**entry)
        if item.dest not in OPTIONS:
            raise ConfigError(f"{where}: option {item.flag} is not in vaecam.configs.schema")
        options.append(item)
    return VerbText(str(block["help"]), str(block["description"]), tuple(options),
                    str(block.get("done", "")))


def commands_of(name: str, block: Any) -> DatasetCommands:
    """The :class:`DatasetCommands` of the ``command:`` block of ``<name>.yaml``."""
    where = f"packaged config '{name}.yaml', command:"
    if not isinstance(block, dict) or ":" not in str(block.get("experiment", "")):
        raise ConfigError(f"{where} needs 'experiment: module:ATTRIBUTE'")
    return DatasetCommands(name, str(block["experiment"]), _verb(block.get("train"), where),
                           _verb(block.get("localize"), where))


@cache
def dataset_commands() -> tuple[DatasetCommands, ...]:
    """Every packaged experiment with a ``command:`` block, by name."""
    from vaecam.configs import packaged

    found = []
    for entry in sorted(resources.files("vaecam.configs").iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".yaml"):
            name = entry.name.removesuffix(".yaml")
            block = packaged(name).get("command")
            if block is not None:
                found.append(commands_of(name, block))
    return tuple(found)
