"""FactorVAE's total-correlation (TC) penalty and its discriminator loss (Kim & Mnih 2018).

A discriminator ``D`` tells samples of ``q(z)`` (class 0) from samples of the product of its
marginals (class 1), obtained by permuting every latent dim independently across the batch. With
logits ``(l0, l1)``, ``l0 - l1`` estimates ``log q(z) / prod_j q(z_j)``, so its batch mean estimates
the TC (the density-ratio trick). The VAE minimises ``gamma * TC``; ``D`` minimises a
cross-entropy on *detached* latents, so its loss can never send gradients into the VAE (the
in-place bug of public ports, where the discriminator update reused a graph the VAE step had
already modified, cannot happen here).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def permute_dims(z: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Permute each column of ``z`` (B, D) independently across the batch (Kim & Mnih, Alg. 2).

    Every column keeps its values (the marginals ``q(z_j)``) while the dependence between columns
    is destroyed. Vectorised: the permutations are the argsorts of uniform noise, one per column.
    """
    noise = torch.rand(z.shape, generator=generator, device=z.device)
    return z.gather(0, noise.argsort(dim=0))


def total_correlation(discriminator: nn.Module, z: Tensor) -> Tensor:
    """TC estimate ``mean(D(z)[:, 0] - D(z)[:, 1])`` for latents ``z`` drawn from q(z|x)."""
    logits = discriminator(z)
    return (logits[:, 0] - logits[:, 1]).mean()


def discriminator_loss(
    discriminator: nn.Module,
    z: Tensor,
    z_other: Tensor,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Cross-entropy of ``D``: ``z`` labelled 0 (q(z)), permuted ``z_other`` labelled 1.

    Both inputs are detached first. ``z_other`` should come from other images than ``z`` (a
    second batch in Kim & Mnih; vaecam uses the other half of the batch), so that the permuted
    samples are independent of the ones labelled 0.
    """
    real = discriminator(z.detach())
    fake = discriminator(permute_dims(z_other.detach(), generator))
    zeros = torch.zeros(len(real), dtype=torch.long, device=real.device)
    ones = torch.ones(len(fake), dtype=torch.long, device=fake.device)
    return 0.5 * (F.cross_entropy(real, zeros) + F.cross_entropy(fake, ones))
