"""A setting's identity: the map family, its grid coordinates and its options, and its label.

A localisation run evaluates *settings*: one map family (``grad-kl``, ``attention``, ...) with
its options fixed. A map family that expands into a grid (attention: encoder layer x method x
activation) gives one setting per grid point, told apart by their coordinates; the row label
of a setting is :meth:`Setting.label` (``attention conv3 m2 relu``, ``grad-kl``), the key of its
results in ``results.json`` and its row in the tables. :class:`SettingContext` holds what a run
fixes for every family (the layers and attention switches, the latent statistics, the mean
training image, options given on the command line), from which each map class expands its
family into settings (:meth:`vaecam.maps.base.AnomalyMap.settings`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple

NORMAL_DIFFERENCE = "normal-difference"
_SHORT_NORMAL_DIFFERENCE = "nd"


def short_method(method: str) -> str:
    """``m1``, ``m2`` or ``nd``: an attention method as setting labels write it."""
    return _SHORT_NORMAL_DIFFERENCE if method == NORMAL_DIFFERENCE else f"m{method}"


@dataclass(frozen=True)
class Setting:
    """One setting of a map family.

    ``layer`` (a layer's table label such as ``conv3``), ``method`` and ``activation`` are the
    grid coordinates of a family that expands into a grid (empty otherwise); ``options`` are the
    family's build options (``smooth_sigma``, the attention module name, ...), not part of the
    label.
    """

    family: str
    layer: str = ""
    method: str = ""
    activation: str = ""
    options: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))

    @property
    def coordinates(self) -> str:
        """``conv3 m2 relu``: the grid point (empty outside a grid)."""
        if not self.layer:
            return ""
        return f"{self.layer} {short_method(self.method)} {self.activation}"

    def label(self) -> str:
        """The row label: the family, then the grid point if any (``attention conv1 m1 relu``)."""
        return f"{self.family} {self.coordinates}" if self.layer else self.family

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Setting:
        """The setting of one entry of ``results.json``'s ``settings`` (its family, layer,
        method and activation fields)."""
        return cls(record["family"], record.get("layer", ""), record.get("method", ""),
                   record.get("activation", ""))

    @classmethod
    def parse(cls, label: str) -> Setting:
        """The setting a row label names (labels read back from a ``results.json`` that keeps
        only the labels); the inverse of :meth:`label`, options aside."""
        parts = label.split(" ")
        if len(parts) != 4:
            return cls(label)
        family, layer, short, activation = parts
        method = NORMAL_DIFFERENCE if short == _SHORT_NORMAL_DIFFERENCE else short.removeprefix("m")
        return cls(family, layer, method, activation)


class GridPoint(NamedTuple):
    """One point of the attention grid: a layer (table label and module name), a method, an
    activation, and the gradient normalisation that method uses."""

    label: str
    module: str
    method: str
    activation: str
    grad_norm: str


@dataclass(frozen=True)
class SettingContext:
    """What a run fixes for every map family.

    ``layers`` maps table labels (``conv3``) to module names (``encoder.4``); ``methods`` x
    ``activations`` x ``layers`` is the attention grid. ``options`` are per-family build options
    given on the command line (``--smooth-sigma``, ``--projection-*``); ``stats`` the latent
    statistics of the training data (normal-difference), ``mean_image`` the mean training image
    (``mean-diff``).
    """

    layers: Mapping[str, str]
    methods: Sequence[str] = ("1", "2")
    activations: Sequence[str] = ("relu", "abs")
    grad_norm: str = "none"
    activation_order: str = "before"
    upsample: bool = True
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    stats: Any = None
    mean_image: Any = None

    def grid(self) -> list[GridPoint]:
        """Every layer x method x activation, in that order; ``grad_norm`` applies to method 2
        only."""
        return [GridPoint(label, module, method, activation,
                          self.grad_norm if method == "2" else "none")
                for label, module in self.layers.items()
                for method in self.methods for activation in self.activations]
