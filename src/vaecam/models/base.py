"""The VAE interface every vaecam model follows.

The attention engine only needs ``encode(x) -> (mu, logvar)`` and a named layer; training,
checkpoints and experiments additionally use ``decode``, ``forward`` and ``loss``. Models are built
from plain configuration (``name`` + keyword arguments) so that checkpoints can record how to
rebuild them without pickled code.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn


@dataclass
class VAEOutput:
    """Result of a forward pass: reconstruction, posterior parameters and the sampled latent."""

    recon: Tensor
    mu: Tensor
    logvar: Tensor
    z: Tensor


@dataclass
class LossTerms:
    """A loss split into the parts that are logged: total = recon + kl (+ extras)."""

    total: Tensor
    recon: Tensor
    kl: Tensor


@contextmanager
def eval_mode(model: nn.Module, enabled: bool = True) -> Iterator[None]:
    """Put ``model`` in eval mode (when ``enabled``) and restore every sub-module's own
    train/eval flag afterwards: explaining or scoring a model never changes its mode."""
    flags = [(module, module.training) for module in model.modules()]
    if enabled:
        model.eval()
    try:
        yield
    finally:
        for module, flag in flags:
            module.training = flag


def reparameterize(
    mu: Tensor, logvar: Tensor, generator: torch.Generator | None = None
) -> Tensor:
    """Draw ``z = mu + sigma * eps`` with ``eps`` from ``generator`` (global RNG if None)."""
    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * eps


def gaussian_kl_per_dim(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(q(z_i|x) || N(0, 1)) per sample and latent dim: shape (B, D)."""
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(q(z|x) || N(0, I)) per sample, summed over latent dims: shape (B,)."""
    return gaussian_kl_per_dim(mu, logvar).sum(dim=1)


class VAE(nn.Module):
    """Base class: subclasses define ``encode`` and ``decode`` and set ``input_shape``.

    ``input_shape`` is (C, H, W); ``latent_dim`` the size of ``mu``; ``config`` the keyword
    arguments that rebuild the model through :func:`vaecam.models.build_model`;
    ``default_layer`` the dotted name of the layer explained when the user names none.
    """

    name: str = "vae"
    default_layer: str = ""

    def __init__(self, input_shape: tuple[int, int, int], latent_dim: int, **config: Any):
        super().__init__()
        self.input_shape = tuple(int(s) for s in input_shape)
        self.latent_dim = int(latent_dim)
        self.config: dict[str, Any] = {
            "input_shape": list(self.input_shape),
            "latent_dim": self.latent_dim,
            **config,
        }

    def fit_data(self, images: Tensor) -> None:
        """Learn constants of the training data before the first step (none by default; a
        model that standardises its input learns the mean and spread here)."""

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def decode(self, z: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> VAEOutput:
        """Encode, sample ``z`` in training mode (``z = mu`` in eval mode), decode."""
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar, generator) if self.training else mu
        return VAEOutput(recon=self.decode(z), mu=mu, logvar=logvar, z=z)

    def reconstruction_loss(self, recon: Tensor, x: Tensor) -> Tensor:
        """Per-sample reconstruction loss, shape (B,). Default: summed binary cross-entropy."""
        bce = nn.functional.binary_cross_entropy(recon, x, reduction="none")
        return bce.flatten(1).sum(dim=1)

    def loss(self, out: VAEOutput, x: Tensor) -> LossTerms:
        """Negative ELBO averaged over the batch (summed over pixels and latent dims)."""
        recon = self.reconstruction_loss(out.recon, x).mean()
        kl = gaussian_kl(out.mu, out.logvar).mean()
        return LossTerms(total=recon + kl, recon=recon, kl=kl)
