"""Anomaly-map methods by CLI name, and the parser of a ``--maps`` value.

Every module of this package that defines a method registers it with :func:`register_map`;
the modules are found and imported on first use, so adding a method is adding a file: what a
run, tuning, the reports and the ``--maps`` help need to know about a method are attributes of
its class (:class:`vaecam.maps.base.AnomalyMap`). ``--maps`` takes comma-separated names and two
keywords: ``cheap`` (every method not marked expensive) and ``all`` (every method, projection
included).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Mapping
from typing import Any, TypeVar

from vaecam.errors import ConfigError
from vaecam.maps.base import AnomalyMap
from vaecam.maps.setting import Setting, SettingContext

CHEAP = "cheap"
ALL = "all"
_INFRASTRUCTURE = {"base", "reconstruction_error", "registry", "setting"}
_REGISTRY: dict[str, type[AnomalyMap]] = {}

M = TypeVar("M", bound=type[AnomalyMap])


def register_map(cls: M) -> M:
    """Class decorator: make a method buildable by its ``name``."""
    _REGISTRY[cls.name] = cls
    return cls


def _load_builtin() -> None:
    """Import every method module of this package so that their ``@register_map`` lines run."""
    package = importlib.import_module("vaecam.maps")
    for info in pkgutil.iter_modules(package.__path__):
        if info.name not in _INFRASTRUCTURE:
            importlib.import_module(f"vaecam.maps.{info.name}")


def available_maps() -> list[str]:
    """Every method's CLI name, sorted."""
    _load_builtin()
    return sorted(_REGISTRY)


def cheap_maps() -> list[str]:
    """The names that ``cheap`` stands for: every method not marked expensive."""
    return [name for name in available_maps() if not _REGISTRY[name].expensive]


def map_class(name: str) -> type[AnomalyMap]:
    """The class of the method called ``name``."""
    _load_builtin()
    if name not in _REGISTRY:
        raise ConfigError(f"unknown anomaly map '{name}'; choose from {_choices()}")
    return _REGISTRY[name]


def latent_families() -> list[str]:
    """The methods whose score is built from ``mu`` or the KL term (``reads_latent``)."""
    return [name for name in available_maps() if _REGISTRY[name].reads_latent]


def maps_help() -> str:
    """The help of ``--maps``: every method with its summary, and the two keywords."""
    described = [f"{name} ({_REGISTRY[name].summary})" if _REGISTRY[name].summary else name
                 for name in available_maps()]
    expensive = [name for name in available_maps() if _REGISTRY[name].expensive]
    but = f"all but {', '.join(expensive)}" if expensive else "every map"
    return (f"comma-separated anomaly maps: {'; '.join(described)}; '{CHEAP}' (default) = "
            f"{but}, '{ALL}' = every map").replace("%", "%%")


def build_setting(setting: Setting, context: SettingContext) -> AnomalyMap:
    """The method of ``setting`` with its options and those its class takes from the run."""
    return build_map(setting.family, **setting.options,
                     **map_class(setting.family).run_options(context))


def _choices() -> str:
    return (
        f"{', '.join(available_maps())}, or '{CHEAP}' ({', '.join(cheap_maps())}) or '{ALL}'"
    )


def build_map(name: str, **options: Any) -> AnomalyMap:
    """The method called ``name`` with ``options`` (its constructor's keyword arguments)."""
    _load_builtin()
    if name not in _REGISTRY:
        raise ConfigError(f"unknown anomaly map '{name}'; choose from {_choices()}")
    cls = _REGISTRY[name]
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ConfigError(
            f"anomaly map '{name}' has no option {', '.join(unknown)}; "
            f"its options: {', '.join(accepted) or 'none'}"
        )
    return cls(**options)


def parse_maps(
    spec: str, options: Mapping[str, Mapping[str, Any]] | None = None
) -> list[AnomalyMap]:
    """Methods named by a ``--maps`` value such as ``recon-abs,grad-kl``, ``cheap`` or
    ``all,projection``, in the order given without repeats; ``options`` maps a method name to
    its constructor options (names not selected are ignored, unknown names are an error)."""
    options = dict(options or {})
    _load_builtin()
    unknown_options = sorted(set(options) - set(_REGISTRY))
    if unknown_options:
        raise ConfigError(
            f"options given for unknown anomaly map {', '.join(unknown_options)}; "
            f"choose from {_choices()}"
        )
    names: list[str] = []
    for token in (t.strip() for t in spec.split(",")):
        if not token:
            continue
        expanded = {CHEAP: cheap_maps(), ALL: available_maps()}.get(token, [token])
        for name in expanded:
            if name not in _REGISTRY:
                raise ConfigError(
                    f"unknown anomaly map '{name}' in --maps; choose from {_choices()}"
                )
            if name not in names:
                names.append(name)
    if not names:
        raise ConfigError(f"--maps names no anomaly map; choose from {_choices()}")
    return [build_map(name, **options.get(name, {})) for name in names]
