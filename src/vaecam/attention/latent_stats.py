"""Pooled posterior statistics of the normal training data, for the Eq. 4 variant.

The paper's "normal difference distribution" compares the posterior of a test image y,
``N(mu_y, sigma_y^2)``, with the posterior pooled over the normal training data,
``N(mu_x, sigma_x^2)``. vaecam pools by moment matching the aggregated posterior (the mixture of
all training posteriors): ``mu_x = E[mu]`` and ``sigma_x^2 = E[sigma^2 + mu^2] - mu_x^2``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from vaecam.attention.encoding import read_posterior
from vaecam.errors import ConfigError, DataError
from vaecam.models.base import eval_mode


def _images(batch: object) -> Tensor:
    """The images of a batch: the batch itself, or the first item of an ``(x, y, ...)`` batch."""
    if isinstance(batch, (tuple, list)) and batch:
        batch = batch[0]
    if not isinstance(batch, Tensor):
        raise DataError(f"a batch of {type(batch).__name__} is not images; give tensors or "
                        "(images, labels) tuples")
    return batch


def _device(model: nn.Module) -> torch.device | None:
    tensor = next(model.parameters(), None)
    if tensor is None:
        tensor = next(model.buffers(), None)
    return None if tensor is None else tensor.device


@dataclass
class LatentStats:
    """Mean and variance (each of shape (D,)) of the pooled normal posterior."""

    mean: Tensor
    var: Tensor

    @classmethod
    @torch.no_grad()
    def from_batches(
        cls,
        model: nn.Module,
        batches: Iterable[object],
        encode: Callable[[Tensor], object] | None = None,
    ) -> LatentStats:
        """Pool the posteriors of batches of normal images (model in eval mode meanwhile).

        ``batches`` yields image tensors or ``(images, labels, ...)`` tuples (a DataLoader of a
        labelled dataset), moved to the model's device. ``encode`` (default ``model.encode``)
        may return any form :func:`read_posterior` accepts, as long as it has a variance.
        """
        encode = encode or getattr(model, "encode", None)
        if not callable(encode):
            raise ConfigError("the model has no encode(x) method; pass encode=callable")
        device = _device(model)
        n, s1, s2 = 0, None, None
        with eval_mode(model):
            for batch in batches:
                x = _images(batch)
                posterior = read_posterior(encode(x if device is None else x.to(device)))
                if posterior.var is None:
                    raise ConfigError("the encoder gives no posterior variance; return "
                                      "(mu, logvar), a dict with 'logvar' or a distribution")
                mu, var = posterior.mu.double(), posterior.var.double()
                batch_s1, batch_s2 = mu.sum(0), (var + mu.pow(2)).sum(0)
                s1 = batch_s1 if s1 is None else s1 + batch_s1
                s2 = batch_s2 if s2 is None else s2 + batch_s2
                n += mu.shape[0]
        if n == 0 or s1 is None or s2 is None:
            raise DataError("no training images given to pool latent statistics")
        mean = s1 / n
        return cls(mean=mean.float(), var=(s2 / n - mean.pow(2)).clamp_min(0).float())

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "var": self.var.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, list[float]]) -> LatentStats:
        return cls(mean=torch.tensor(data["mean"]), var=torch.tensor(data["var"]))
