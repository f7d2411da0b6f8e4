"""Projection map (Dehaene et al. 2020) against a per-image reference of its update rule."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vaecam.maps import build_map
from vaecam.maps.projection import project
from vaecam.models import build_model


def _mnist(seed=0):
    torch.manual_seed(seed)
    model = build_model("mnist-vae", input_shape=(1, 12, 12), latent_dim=4, channels=(3, 5),
                        hidden=16)
    return model.double()


def _images(n=3, seed=0):
    return torch.rand((n, 1, 12, 12), generator=torch.Generator().manual_seed(seed)).double()


def reference_energy(model, x, x0, weight, loss="squared"):
    """E(x) = L_r(x) + weight * ||x - x0||_1 per image, z = mu, eval mode: (B,)."""
    model.eval()
    energies = []
    for i in range(x.shape[0]):
        xi = x[i : i + 1]
        recon = model.decode(model.encode(xi)[0])
        if loss == "squared":
            rec = ((xi - recon) ** 2).sum()
        else:
            rec = F.binary_cross_entropy(recon, xi, reduction="sum")
        energies.append(rec + weight * (xi - x0[i : i + 1]).abs().sum())
    return torch.stack(energies)


def reference_projection(model, x0, steps, alpha, weight, loss="squared"):
    """The tolerance-weighted update of Dehaene et al., one image at a time, then clamping."""
    model.eval()
    out = []
    for i in range(x0.shape[0]):
        x = x0[i : i + 1].clone()
        for _ in range(steps):
            xt = x.clone().requires_grad_(True)
            energy = reference_energy(model, xt, x0[i : i + 1], weight, loss)[0]
            (grad,) = torch.autograd.grad(energy, xt)
            with torch.no_grad():
                recon = model.decode(model.encode(x)[0])
            x = (x - alpha * grad * (x - recon) ** 2).clamp(0, 1)
        out.append(x)
    return torch.cat(out)


def test_zero_steps_give_an_all_zero_map():
    model = _mnist()
    maps = build_map("projection", steps=0)(model, _images())
    assert maps.shape == (3, 12, 12)
    assert torch.equal(maps, torch.zeros_like(maps))


@pytest.mark.parametrize("loss", ["squared", "model"])
def test_projection_matches_per_image_reference(loss):
    model = _mnist()
    x0 = _images()
    options = {"steps": 3, "step_size": 0.7, "distance_weight": 0.2, "loss": loss}
    ref = reference_projection(model, x0, 3, 0.7, 0.2, loss)
    torch.testing.assert_close(
        project(model, x0, **options), ref, rtol=1e-9, atol=1e-12
    )
    got = build_map("projection", **options)(model, x0)
    torch.testing.assert_close(got, (x0 - ref).abs()[:, 0], rtol=1e-9, atol=1e-12)
    assert got.abs().max() > 1e-4  # the images did move


@pytest.mark.parametrize("weight", [0.0, 0.1])
def test_energy_decreases_over_steps(weight):
    model = _mnist(seed=1)
    x0 = _images(seed=1)
    energies = [
        reference_energy(model, project(model, x0, steps=t, step_size=0.5,
                                        distance_weight=weight), x0, weight).detach()
        for t in range(6)
    ]
    for before, after in zip(energies, energies[1:], strict=False):
        assert (after <= before + 1e-12).all()
    assert (energies[-1] < energies[0] - 1e-3).all()


def test_pixels_move_in_proportion_to_their_squared_error():
    """One step with the decoder gradient removed (a constant decoder): the update is
    -alpha * 2 d * d^2 for d = x - recon, so a pixel twice as wrong moves eight times as far."""

    class ConstantVAE(torch.nn.Module):
        latent_dim = 1
        input_shape = (1, 1, 2)

        def encode(self, x):
            return x.sum(dim=(1, 2, 3))[:, None] * 0, torch.zeros(x.shape[0], 1, dtype=x.dtype)

        def decode(self, z):
            return torch.full((z.shape[0], 1, 1, 2), 0.5, dtype=z.dtype) + 0 * z[:, :, None, None]

    x0 = torch.tensor([[[[0.6, 0.7]]]], dtype=torch.float64)
    moved = x0 - project(ConstantVAE(), x0, steps=1, step_size=0.1, distance_weight=0.0)
    torch.testing.assert_close(moved, 0.1 * 2 * (x0 - 0.5) ** 3)
    assert moved[0, 0, 0, 1] / moved[0, 0, 0, 0] == pytest.approx(8.0)
