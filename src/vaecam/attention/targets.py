"""Scalar functions of the latent code that attention maps can explain.

A target is any callable ``f(mu) -> (B,)``: one value per image from the posterior mean ``mu``
(B, D). The engine backpropagates ``sum_b f(mu_b)`` to the explained layer, which gives every
image its own gradient because images do not interact in eval mode. This is the latent-space
counterpart of pytorch-grad-cam's ``targets`` (which pick a class score).

Named targets:

* :class:`SumOfMeans`: ``sum_i mu_i``, the score of "method 2" in the authors' code.
* :class:`LatentDirection`: ``w . mu`` for a direction ``w`` (a concept direction, one latent
  unit).
* :class:`DistanceToMean`: ``||(mu - m) / s||``, the distance to a reference mean ``m`` (such as
  the normal data's), optionally in units of its standard deviation ``s``.
* :class:`NormalDifference`: vaecam's reading of Eq. 4 (Liu et al. 2020), built from
  :class:`LatentStats`; it also needs the posterior variance, so it is a :class:`PosteriorTarget`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from vaecam.attention.latent_stats import LatentStats
from vaecam.errors import ConfigError

Target = Callable[[Tensor], Tensor]


class PosteriorTarget:
    """A target that also reads the posterior variance: the engine calls ``target(mu, var)``.

    ``var`` (B, D) is detached: such targets hold the variances fixed.
    """

    def __call__(self, mu: Tensor, var: Tensor) -> Tensor:
        raise NotImplementedError


def _check_size(vector: Tensor, mu: Tensor, what: str) -> None:
    if vector.shape != mu.shape[1:]:
        raise ConfigError(f"the {what} has {vector.numel()} entries but the latent code has "
                          f"{mu.shape[1]}; give one value per latent dimension")


class SumOfMeans:
    """``sum_i mu_i`` per image: anomaly attention ("method 2" of the authors' code)."""

    def __call__(self, mu: Tensor) -> Tensor:
        return mu.sum(dim=1)


class LatentDirection:
    """``w . mu`` per image for a latent direction ``w`` of D entries (not normalised)."""

    def __init__(self, direction: Tensor | Sequence[float]):
        self.direction = torch.as_tensor(direction, dtype=torch.float32).flatten()

    def __call__(self, mu: Tensor) -> Tensor:
        _check_size(self.direction, mu, "direction")
        return mu.float() @ self.direction.to(mu.device)


class DistanceToMean:
    """Euclidean distance of ``mu`` to ``mean``, each dimension divided by ``scale`` if given.

    :meth:`from_stats` measures it in standard deviations of the pooled normal posterior.
    """

    def __init__(self, mean: Tensor | Sequence[float], scale: Tensor | None = None):
        self.mean = torch.as_tensor(mean, dtype=torch.float32).flatten()
        self.scale = None if scale is None else scale.float().flatten().clamp_min(1e-12)

    @classmethod
    def from_stats(cls, stats: LatentStats, standardized: bool = True) -> DistanceToMean:
        return cls(stats.mean, stats.var.sqrt() if standardized else None)

    def __call__(self, mu: Tensor) -> Tensor:
        _check_size(self.mean, mu, "mean")
        offset = mu.float() - self.mean.to(mu.device)
        if self.scale is not None:
            offset = offset / self.scale.to(mu.device)
        return torch.linalg.vector_norm(offset, dim=1)  # gradient 0 (not NaN) at the mean


class NormalDifference(PosteriorTarget):
    """Eq. 4 variant: how far the test posterior is from the pooled normal posterior.

    The difference ``q(z|y) - q(z|x)`` of the test posterior ``N(mu_y, sigma_y^2)`` and the
    pooled normal one ``N(mu_x, sigma_x^2)`` is ``N(mu_y - mu_x, sigma_x^2 + sigma_y^2)``. The
    score is ``s = 1/2 sum_i d_i^2 / (sigma_x,i^2 + sigma_y,i^2)`` with ``d = mu_y - mu_x``, or
    with ``d`` drawn from the difference distribution when ``sample=True`` (noise from
    ``generator``, drawn on the CPU). With the variances held fixed its gradient w.r.t. ``mu_y``
    is ``d / (sigma_x^2 + sigma_y^2)``. The paper leaves the score open; this is vaecam's reading.
    """

    def __init__(
        self, stats: LatentStats, sample: bool = False, generator: torch.Generator | None = None
    ):
        self.stats = stats
        self.sample = sample
        self.generator = generator

    def __call__(self, mu: Tensor, var: Tensor) -> Tensor:
        _check_size(self.stats.mean, mu, "mean of the latent statistics")
        total_var = self.stats.var.to(mu.device, torch.float32) + var.float()
        d = mu.float() - self.stats.mean.to(mu.device, torch.float32)
        if self.sample:
            noise = torch.randn(d.shape, generator=self.generator, dtype=d.dtype, device="cpu")
            d = d + noise.to(d.device) * total_var.sqrt()
        return 0.5 * (d.pow(2) / total_var).sum(dim=1)
