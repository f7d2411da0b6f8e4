"""VAE models and the registry that builds them from configuration by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vaecam.errors import ConfigError
from vaecam.models.base import VAE, LossTerms, VAEOutput

_REGISTRY: dict[str, Callable[..., VAE]] = {}


def register(name: str) -> Callable[[type[VAE]], type[VAE]]:
    """Class decorator: make a VAE buildable as ``build_model(name, **config)``."""

    def wrap(cls: type[VAE]) -> type[VAE]:
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def available_models() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def build_model(name: str, **config: Any) -> VAE:
    """Build a registered model from its name and the keyword arguments in ``model.config``."""
    _load_builtin()
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model '{name}'; choose one of: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name](**config)


def _load_builtin() -> None:
    """Import the built-in model modules so that their ``@register`` lines run."""
    import importlib

    for module in ("mnist", "ucsd", "mvtec", "factorvae"):
        try:
            importlib.import_module(f"vaecam.models.{module}")
        except ModuleNotFoundError as exc:  # a model module not written yet
            if exc.name != f"vaecam.models.{module}":
                raise


__all__ = ["VAE", "VAEOutput", "LossTerms", "build_model", "register", "available_models"]
