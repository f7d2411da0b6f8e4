"""Pooled posterior statistics of the normal training data, for the Eq. 4 variant.

The paper's "normal difference distribution" compares the posterior of a test image y,
``N(mu_y, sigma_y^2)``, with the posterior pooled over the normal training data,
``N(mu_x, sigma_x^2)``. vaecam pools by moment matching the aggregated posterior (the mixture of
all training posteriors): ``mu_x = E[mu]`` and ``sigma_x^2 = E[sigma^2 + mu^2] - mu_x^2``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass
class LatentStats:
    """Mean and variance (each of shape (D,)) of the pooled normal posterior."""

    mean: Tensor
    var: Tensor

    @classmethod
    @torch.no_grad()
    def from_batches(cls, model: nn.Module, batches: Iterable[Tensor]) -> LatentStats:
        """Pool ``model.encode`` over batches of normal images (model put in eval mode)."""
        was_training = model.training
        model.eval()
        n, s1, s2 = 0, None, None
        try:
            for x in batches:
                mu, logvar = model.encode(x)
                mu, var = mu.double(), logvar.double().exp()
                batch_s1, batch_s2 = mu.sum(0), (var + mu.pow(2)).sum(0)
                s1 = batch_s1 if s1 is None else s1 + batch_s1
                s2 = batch_s2 if s2 is None else s2 + batch_s2
                n += mu.shape[0]
        finally:
            model.train(was_training)
        if n == 0 or s1 is None or s2 is None:
            raise ValueError("no training images given to pool latent statistics")
        mean = s1 / n
        return cls(mean=mean.float(), var=(s2 / n - mean.pow(2)).clamp_min(0).float())

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "var": self.var.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, list[float]]) -> LatentStats:
        return cls(mean=torch.tensor(data["mean"]), var=torch.tensor(data["var"]))
