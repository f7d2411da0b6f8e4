"""Targets ``f(mu) -> (B,)`` against a plain reference: one autograd.grad per image."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vaecam.attention import (
    AttentionExplainer,
    DistanceToMean,
    LatentDirection,
    LatentStats,
    NormalDifference,
    SumOfMeans,
)
from vaecam.errors import ConfigError
from vaecam.models import build_model

LATENT = 6


def reference_target_map(model, x, layer_name, score, rms_image=False):
    """Eq. 1-2 with ReLU for ``score(mu, logvar) -> (B,)``: image b's map from the gradient of
    its own score alone, so nothing relies on summing scores over the batch."""
    store = {}
    handle = model.get_submodule(layer_name).register_forward_hook(
        lambda m, i, o: store.__setitem__("A", o))
    model.eval()
    mu, logvar = model.encode(x)
    handle.remove()
    A = store["A"]
    value = score(mu, logvar)
    maps = []
    for b in range(x.shape[0]):
        (g,) = torch.autograd.grad(value[b], A, retain_graph=True)
        g = g[b]
        if rms_image:
            g = g / (torch.sqrt(torch.mean(g**2)) + 1e-5)
        alpha = g.mean(dim=(1, 2))
        maps.append(torch.relu((alpha[:, None, None] * A[b]).sum(dim=0)))
    maps = torch.stack(maps)[:, None].detach()
    return F.interpolate(maps, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = build_model("mnist-vae", input_shape=(1, 16, 16), latent_dim=LATENT, channels=(4, 6),
                        hidden=12)
    stats = LatentStats.from_batches(model, [torch.rand(10, 1, 16, 16)])
    return model, stats, torch.rand(4, 1, 16, 16)


def _check(got, expected):
    scale = expected.abs().max()
    assert scale > 1e-5
    torch.testing.assert_close(got, expected, atol=1e-5 * scale, rtol=1e-5)


def test_sum_of_means_is_method2(setup):
    model, _, x = setup
    explainer = AttentionExplainer(model, "encoder.2")
    got = explainer.target_map(x, SumOfMeans())
    _check(got, reference_target_map(model, x, "encoder.2", lambda mu, lv: mu.sum(dim=1)))
    torch.testing.assert_close(got, explainer.method2(x), atol=0, rtol=0)
    normed = explainer.target_map(x, SumOfMeans(), grad_norm="rms-image")
    _check(normed, reference_target_map(model, x, "encoder.2", lambda mu, lv: mu.sum(dim=1),
                                        rms_image=True))


def test_latent_direction(setup):
    model, _, x = setup
    w = torch.tensor([0.5, -1.0, 0.0, 2.0, 0.3, -0.7])
    got = AttentionExplainer(model, "encoder.2").target_map(x, LatentDirection(w))
    _check(got, reference_target_map(model, x, "encoder.2", lambda mu, lv: (mu * w).sum(dim=1)))
    unit = AttentionExplainer(model, "encoder.2").target_map(x, LatentDirection([0, 0, 1, 0, 0, 0]))
    per_dim = AttentionExplainer(model, "encoder.2").per_dimension(x, dims=[2])[:, 0]
    torch.testing.assert_close(unit, per_dim, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("standardized", [True, False])
def test_distance_to_mean(setup, standardized):
    model, stats, x = setup
    target = DistanceToMean.from_stats(stats, standardized=standardized)
    scale = stats.var.sqrt() if standardized else torch.ones(LATENT)

    def distance(mu, logvar):
        return torch.sqrt((((mu - stats.mean) / scale) ** 2).sum(dim=1))

    got = AttentionExplainer(model, "encoder.2").target_map(x, target)
    _check(got, reference_target_map(model, x, "encoder.2", distance))


def test_normal_difference_target_is_eq4(setup):
    model, stats, x = setup

    def score(mu, logvar):
        var = stats.var + logvar.exp().detach()
        return 0.5 * ((mu - stats.mean) ** 2 / var).sum(dim=1)

    explainer = AttentionExplainer(model, "encoder.2")
    got = explainer.target_map(x, NormalDifference(stats))
    _check(got, reference_target_map(model, x, "encoder.2", score))
    torch.testing.assert_close(got, explainer.normal_difference(x, stats), atol=0, rtol=0)


def test_any_callable_and_per_image_gradients(setup):
    """A nonlinear target: each image's map is the same in a batch as alone."""
    model, _, x = setup

    def target(mu):
        return (mu[:, :3] ** 2).sum(dim=1) - torch.tanh(mu[:, 4])

    explainer = AttentionExplainer(model, "encoder.2")
    got = explainer.target_map(x, target)
    _check(got, reference_target_map(model, x, "encoder.2", lambda mu, lv: target(mu)))
    alone = torch.cat([explainer.target_map(x[b : b + 1], target) for b in range(len(x))])
    torch.testing.assert_close(got, alone, atol=1e-6, rtol=1e-5)
    assert explainer.explain(x, "target", target=target).equal(got)


def test_differentiable_target_map_reaches_the_encoder(setup):
    model, stats, x = setup
    maps = AttentionExplainer(model, "encoder.2").target_map(
        x, DistanceToMean.from_stats(stats), differentiable=True)
    (grad,) = torch.autograd.grad(maps.sum(), model.encoder[0].weight)
    assert grad.abs().sum() > 0
    assert all(p.grad is None for p in model.parameters())


def test_bad_targets_are_refused_in_one_line(setup):
    model, _, x = setup
    explainer = AttentionExplainer(model, "encoder.2")
    with pytest.raises(ConfigError, match="one value per image, shape \\(4,\\), not \\(\\)"):
        explainer.target_map(x, lambda mu: mu.sum())
    with pytest.raises(ConfigError, match="does not depend on mu"):
        explainer.target_map(x, lambda mu: torch.zeros(len(mu)))
    with pytest.raises(ConfigError, match="direction has 3 entries but the latent code has 6"):
        explainer.target_map(x, LatentDirection([1.0, 0.0, 0.0]))
