"""vaecam: visual explanations for variational autoencoders.

The attention engine (:class:`AttentionExplainer`, :func:`explain`) works on any VAE whose
encoder gives ``(mu, logvar)`` (or ``mu``, a dict, a distribution); the rest of the package
trains the papers' models and runs their experiments. Names are imported on first use, so that
``import vaecam`` (and ``vaecam --version``) does not load PyTorch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

_LAZY = {
    "AttentionExplainer": "vaecam.attention",
    "LatentStats": "vaecam.attention",
    "explain": "vaecam.attention",
    "VAE": "vaecam.models",
    "VAEOutput": "vaecam.models",
    "available_models": "vaecam.models",
    "build_model": "vaecam.models",
    "load_model": "vaecam.training.checkpoints",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vaecam' has no attribute {name!r}")
