"""Active units and KL per dim against plain formulas."""

import torch

from vaecam.metrics.latent import active_units, encoder_activity, mean_kl_per_dim


def test_active_units_counts_dims_that_vary():
    mu = torch.zeros(100, 5)
    mu[:, 1] = torch.linspace(-1, 1, 100)  # variance ~0.34
    mu[:, 3] = 0.001 * torch.randn(100)  # collapsed
    assert active_units(mu) == 1


def test_mean_kl_per_dim_matches_formula():
    mu, logvar = torch.randn(7, 3), torch.randn(7, 3)
    sigma2 = logvar.exp()
    expected = torch.stack([
        torch.tensor([0.5 * (sigma2[i, d] + mu[i, d] ** 2 - 1 - logvar[i, d]) for i in range(7)])
        .mean() for d in range(3)
    ])
    torch.testing.assert_close(mean_kl_per_dim(mu, logvar), expected)


def test_collapsed_encoder_has_no_active_units():
    class Collapsed(torch.nn.Module):
        def encode(self, x):
            return torch.zeros(len(x), 4), torch.zeros(len(x), 4)

    assert encoder_activity(Collapsed(), torch.rand(10, 1, 4, 4)) == {"active_units": 0,
                                                                        "kl": 0.0}
