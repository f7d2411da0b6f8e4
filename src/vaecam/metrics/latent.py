"""Latent-space diagnostics: which latent dimensions a VAE actually uses.

Attention maps are gradients of ``mu``; when the posterior has collapsed (``mu`` no longer
depends on the input) every map is zero and localisation scores fall to 0.5. The active-units
count of Burda et al. (2016) detects that: a dimension is active when the variance of its
posterior mean across the data exceeds a threshold (0.01).
"""

from __future__ import annotations

import torch
from torch import Tensor


def active_units(mu: Tensor, threshold: float = 0.01) -> int:
    """Number of latent dims whose posterior mean varies across the data (``mu``: (N, D))."""
    if mu.dim() != 2 or mu.shape[0] < 2:
        raise ValueError("active_units needs posterior means of shape (N, D) with N >= 2")
    return int((mu.double().var(dim=0) > threshold).sum())


def mean_kl_per_dim(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(q(z|x) || N(0, 1)) of each latent dim averaged over the data: (D,)."""
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).mean(dim=0)


@torch.no_grad()
def encoder_activity(model: torch.nn.Module, x: Tensor) -> dict[str, float]:
    """Active units and total KL of ``model`` on images ``x`` (model put in eval mode)."""
    was_training = model.training
    model.eval()
    try:
        mu, logvar = model.encode(x)
    finally:
        model.train(was_training)
    return {"active_units": active_units(mu), "kl": float(mean_kl_per_dim(mu, logvar).sum())}
