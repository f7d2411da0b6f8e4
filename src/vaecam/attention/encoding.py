"""Run an encoder and read the posterior from whatever it returns.

Encoders are written many ways; each of these is read without a wrapper:

* ``(mu, logvar)`` or ``mu`` alone;
* a dict (or an output object) with the mean under ``mu``, ``loc``, ``mean`` or ``embedding``
  and optionally ``logvar``, ``log_var``, ``log_covariance`` (log-variances), ``var``,
  ``variance``, ``scale`` or ``std``: pythae's ``ModelOutput(embedding, log_covariance)`` is one;
* a ``torch.distributions`` object (``Normal``, ``Independent(Normal)``, ...): ``.mean`` and
  ``.variance``;
* anything with a ``latent_dist`` (diffusers ``AutoencoderKL.encode`` returns one holding a
  ``DiagonalGaussianDistribution`` with ``.mean`` and ``.logvar``);
* any other form through ``encode=callable`` returning one of these.

A spatial latent (``mu`` of shape (B, C, h, w), or any (B, ...)) is flattened to (B, D) in
row-major order; :class:`~vaecam.attention.latent_layout.LatentLayout` maps a flat unit index to
its position. The attention engine needs ``mu`` and, for the Eq. 4 variant, the variance; an
unreadable output is refused with one line that says what to pass instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from torch import Tensor, nn

from vaecam.attention.latent_layout import LatentLayout
from vaecam.errors import ConfigError

_FORMS = (
    "(mu, logvar), mu, a dict or object with 'mu'/'loc'/'mean'/'embedding' (and optionally "
    "'logvar'/'log_covariance'/'var'/'scale'), an object with 'latent_dist', or a "
    "torch.distributions object"
)
_MEANS = ("mu", "loc", "mean", "embedding")
_LOG_VARIANCES = ("logvar", "log_var", "log_covariance")
_VARIANCES = ("var", "variance")
_SCALES = ("scale", "std")


@dataclass
class Posterior:
    """Posterior mean (B, D) and variance (B, D) or None, and the per-image latent shape."""

    mu: Tensor
    var: Tensor | None = None
    layout: LatentLayout | None = None


def _field(output: object, names: tuple[str, ...]) -> Tensor | None:
    """The first tensor found under one of ``names``, as a key or as an attribute."""
    for name in names:
        if isinstance(output, Mapping):
            value = output.get(name)
        else:
            try:
                value = getattr(output, name, None)
            except NotImplementedError:  # a distribution without this moment
                value = None
        if isinstance(value, Tensor):
            return value
    return None


def _from_fields(output: object) -> Posterior | None:
    """The posterior of a dict or output object read by field names; None without a mean."""
    mu = _field(output, _MEANS)
    if mu is None:
        return None
    logvar = _field(output, _LOG_VARIANCES)
    if logvar is not None:
        return Posterior(mu, logvar.exp())
    var = _field(output, _VARIANCES)
    if var is not None:
        return Posterior(mu, var)
    scale = _field(output, _SCALES)
    return Posterior(mu, None if scale is None else scale.pow(2))


def _raw_posterior(output: object) -> Posterior:
    """The posterior in ``output`` before flattening; a :class:`ConfigError` for other forms."""
    if isinstance(output, Tensor):
        return Posterior(output)
    if isinstance(output, (tuple, list)):
        if len(output) != 2 or not all(isinstance(t, Tensor) for t in output):
            raise ConfigError(f"encode() returned a {type(output).__name__} of {len(output)} "
                              f"items; return {_FORMS} (or pass encode=...)")
        return Posterior(output[0], output[1].exp())
    inner = output.get("latent_dist") if isinstance(output, Mapping) else getattr(
        output, "latent_dist", None)
    if inner is not None:
        return _raw_posterior(inner)
    found = _from_fields(output)
    if found is not None:
        return found
    if isinstance(output, Mapping):
        keys = ", ".join(map(str, output)) or "none"
        raise ConfigError(f"encode() returned a dict without a 'mu', 'loc', 'mean' or "
                          f"'embedding' tensor (keys: {keys}); return {_FORMS}")
    raise ConfigError(f"encode() returned {type(output).__name__}; return {_FORMS} "
                      "(or pass encode=...)")


def read_posterior(output: object) -> Posterior:
    """The flat (B, D) :class:`Posterior` in one encoder output, with its latent layout."""
    posterior = _raw_posterior(output)
    mu, var = posterior.mu, posterior.var
    if mu.dim() < 2:
        raise ConfigError(f"the posterior mean has shape {tuple(mu.shape)}, not (B, D) or "
                          "(B, C, h, w); return one latent code per image")
    if var is not None and var.shape != mu.shape:
        raise ConfigError(f"the posterior variance has shape {tuple(var.shape)}, not that of "
                          f"mu {tuple(mu.shape)}; return a matching logvar")
    layout = LatentLayout(tuple(mu.shape[1:]))
    if mu.dim() > 2:
        mu = mu.flatten(1)
        var = None if var is None else var.flatten(1)
    return Posterior(mu, var, layout)



class PosteriorMean(nn.Module):
    """``x -> mu`` (B, D) of any encoder as a module, for tools that explain a model's outputs.

    pytorch-grad-cam or Captum then treat each latent unit as a class score, e.g.
    ``GradCAM(PosteriorMean(vae), [layer])`` with ``ClassifierOutputTarget(i)`` for unit ``i``.
    ``encode`` defaults to ``model.encode``; any output :func:`read_posterior` reads works.
    """

    def __init__(self, model: nn.Module, encode: Callable[[Tensor], object] | None = None):
        super().__init__()
        self.model = model
        self.encode = encode

    def forward(self, x: Tensor) -> Tensor:
        encode = self.encode or self.model.encode
        return read_posterior(encode(x)).mu
