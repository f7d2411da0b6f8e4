"""Run an encoder and read the posterior from whatever it returns.

Encoders are written many ways: ``(mu, logvar)``, ``mu`` alone, a dict with ``mu`` or ``loc``,
or a ``torch.distributions`` object. The attention engine needs the posterior mean ``mu`` of
shape (B, D) and, for the Eq. 4 variant, the posterior variance; everything else is refused with
one line that says what to pass instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from vaecam.errors import ConfigError

_FORMS = (
    "(mu, logvar), mu, a dict with 'mu' or 'loc' (and optionally 'logvar' or 'scale'), "
    "or a torch.distributions object"
)


@dataclass
class Posterior:
    """Posterior mean (B, D) and variance (B, D), or None where the encoder gives no variance."""

    mu: Tensor
    var: Tensor | None = None


def _from_mapping(output: Mapping[object, object]) -> Posterior:
    mu = output.get("mu", output.get("loc"))
    if not isinstance(mu, Tensor):
        keys = ", ".join(map(str, output)) or "none"
        raise ConfigError(f"encode() returned a dict without a 'mu' or 'loc' tensor (keys: "
                          f"{keys}); return {_FORMS}")
    logvar, scale = output.get("logvar"), output.get("scale")
    if isinstance(logvar, Tensor):
        return Posterior(mu, logvar.exp())
    return Posterior(mu, scale.pow(2) if isinstance(scale, Tensor) else None)


def _from_distribution(output: torch.distributions.Distribution) -> Posterior:
    try:
        var = output.variance
    except NotImplementedError:
        var = None
    return Posterior(output.mean, var)


def read_posterior(output: object) -> Posterior:
    """The :class:`Posterior` in one encoder output; a :class:`ConfigError` for other forms."""
    if isinstance(output, Tensor):
        posterior = Posterior(output)
    elif isinstance(output, (tuple, list)):
        if len(output) != 2 or not all(isinstance(t, Tensor) for t in output):
            raise ConfigError(f"encode() returned a {type(output).__name__} of {len(output)} "
                              f"items; return {_FORMS} (or pass encode=...)")
        posterior = Posterior(output[0], output[1].exp())
    elif isinstance(output, Mapping):
        posterior = _from_mapping(output)
    elif isinstance(output, torch.distributions.Distribution):
        posterior = _from_distribution(output)
    else:
        raise ConfigError(f"encode() returned {type(output).__name__}; return {_FORMS} "
                          "(or pass encode=...)")
    if posterior.mu.dim() != 2:
        raise ConfigError(f"the posterior mean has shape {tuple(posterior.mu.shape)}, not (B, D); "
                          "pass encode=... that returns a flat mu, e.g. mu.flatten(1)")
    if posterior.var is not None and posterior.var.shape != posterior.mu.shape:
        raise ConfigError(f"the posterior variance has shape {tuple(posterior.var.shape)}, not "
                          f"that of mu {tuple(posterior.mu.shape)}; return a matching logvar")
    return posterior
