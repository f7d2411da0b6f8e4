"""Latent-space diagnostics: which latent dimensions a VAE actually uses.

Attention maps are gradients of ``mu``; when the posterior has collapsed (``mu`` no longer
depends on the input) the maps carry no information about the input and localisation scores are
noise. The active-units count of Burda et al. (2016, "Importance weighted autoencoders") detects
that: a dimension is active when the variance of its posterior mean across the data exceeds a
threshold (0.01). vaecam calls a model *collapsed* when no unit is active.
"""

from __future__ import annotations

import torch
from torch import Tensor

from vaecam.models.base import eval_mode, gaussian_kl_per_dim

ACTIVE_THRESHOLD = 0.01


def active_units(mu: Tensor, threshold: float = ACTIVE_THRESHOLD) -> int:
    """Number of latent dims whose posterior mean varies across the data (``mu``: (N, D))."""
    if mu.dim() != 2 or mu.shape[0] < 2:
        raise ValueError("active_units needs posterior means of shape (N, D) with N >= 2")
    return int((mu.double().var(dim=0) > threshold).sum())


def mean_kl_per_dim(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(q(z|x) || N(0, 1)) of each latent dim averaged over the data: (D,)."""
    return gaussian_kl_per_dim(mu, logvar).mean(dim=0)


@torch.no_grad()
def posterior_means(model: torch.nn.Module, x: Tensor, batch_size: int = 256
                    ) -> tuple[Tensor, Tensor]:
    """(mu, logvar) of ``model.encode`` over ``x`` in batches, model in eval mode (restored)."""
    with eval_mode(model):
        parts = [model.encode(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def posterior_summary(mu: Tensor, logvar: Tensor) -> dict[str, float | int | bool]:
    """Health of a latent code from posterior parameters ``mu``, ``logvar`` (N >= 2, D).

    ``kl``: mean over images of the KL summed over latent dims (nats); ``active_units``: dims with
    Var_x(mu) > 0.01; ``mu_std``: mean over dims of the std of ``mu`` across images;
    ``mu_std_max``: the largest of those stds; ``latent_dim``; ``collapsed``: no active unit.
    """
    mu, logvar = mu.double(), logvar.double()
    std = mu.std(dim=0)
    units = active_units(mu)
    return {
        "kl": float(mean_kl_per_dim(mu, logvar).sum()),
        "active_units": units,
        "mu_std": float(std.mean()),
        "mu_std_max": float(std.max()),
        "latent_dim": int(mu.shape[1]),
        "collapsed": units == 0,
    }


def latent_summary(model: torch.nn.Module, x: Tensor) -> dict[str, float | int | bool]:
    """Health of a model's latent code on images ``x`` (N >= 2); see :func:`posterior_summary`."""
    return posterior_summary(*posterior_means(model, x))


def encoder_activity(model: torch.nn.Module, x: Tensor) -> dict[str, float]:
    """Active units and total KL of ``model`` on images ``x`` (see :func:`latent_summary`)."""
    summary = latent_summary(model, x)
    return {"active_units": summary["active_units"], "kl": summary["kl"]}
