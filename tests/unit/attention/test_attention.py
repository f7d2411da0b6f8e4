"""Attention engine against a slow, plain reference (one autograd.grad per latent dim)."""

from __future__ import annotations

import pytest
import torch
from attention_reference import reference_method2, reference_per_dimension, upsample
from torch import nn

from vaecam.attention import AttentionExplainer, LatentStats, explain
from vaecam.errors import ConfigError
from vaecam.models import build_model


class SkipVAE(nn.Module):
    """A user-style VAE that is not a plain Sequential: a skip connection around a conv."""

    latent_dim = 6

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, 2, 1)
        self.conv2 = nn.Conv2d(8, 8, 3, 1, 1)
        self.head = nn.Linear(8 * 8 * 8, 2 * self.latent_dim)

    def encode(self, x):
        h = torch.tanh(self.conv1(x))
        h = h + torch.relu(self.conv2(h))
        mu, logvar = self.head(h.flatten(1)).chunk(2, dim=1)
        return mu, logvar


def _mnist(seed=0, size=16, latent=8):
    torch.manual_seed(seed)
    return build_model("mnist-vae", input_shape=(1, size, size), latent_dim=latent,
                       channels=(6, 10), hidden=20)


@pytest.mark.parametrize("activation", ["relu", "abs", "sigmoid"])
@pytest.mark.parametrize("layer", ["encoder.0", "encoder.2"])
@pytest.mark.parametrize("batch", [1, 7])
@pytest.mark.parametrize("fast_path", ["auto", "off"])
def test_per_dimension_and_methods_match_reference(activation, layer, batch, fast_path):
    model = _mnist(seed=batch)
    x = torch.rand(batch, 1, 16, 16)
    explainer = AttentionExplainer(model, layer, activation=activation, fast_path=fast_path)
    ref = reference_per_dimension(model, x, layer, activation)
    got = explainer.per_dimension(x)
    assert got.shape == (batch, 8, 16, 16)
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(explainer.method1(x), ref.mean(dim=1), atol=1e-5, rtol=0)
    torch.testing.assert_close(
        explainer.method2(x), reference_method2(model, x, layer, activation), atol=1e-5, rtol=0
    )
    torch.testing.assert_close(
        explainer.method2(x, grad_norm="rms-batch"),
        reference_method2(model, x, layer, activation, rms=True),
        atol=1e-5,
        rtol=0,
    )
    after = AttentionExplainer(model, layer, activation=activation, fast_path=fast_path,
                               activation_order="after-upsample")
    torch.testing.assert_close(
        after.method2(x, grad_norm="rms-batch"),
        reference_method2(model, x, layer, activation, rms=True, order="after-upsample"),
        atol=1e-5,
        rtol=0,
    )


def test_maps_are_not_trivial():
    """Guard the reference comparison against all-zero maps."""
    model = _mnist()
    maps = AttentionExplainer(model, "encoder.2").per_dimension(torch.rand(3, 1, 16, 16))
    assert maps.abs().max() > 1e-4


@pytest.mark.parametrize("activation", ["relu", "abs"])
def test_generic_path_on_non_sequential_model(activation):
    torch.manual_seed(3)
    model = SkipVAE()
    x = torch.rand(7, 3, 16, 16)
    for layer in ("conv1", "conv2"):
        got = AttentionExplainer(model, layer, activation=activation).per_dimension(x)
        torch.testing.assert_close(
            got, reference_per_dimension(model, x, layer, activation), atol=1e-5, rtol=0
        )


def test_selected_dims_and_explain_function():
    model = _mnist()
    x = torch.rand(4, 1, 16, 16)
    ref = reference_per_dimension(model, x, "encoder.2", "relu")
    got = AttentionExplainer(model, "encoder.2").per_dimension(x, dims=[5, 1])
    torch.testing.assert_close(got, ref[:, [5, 1]], atol=1e-5, rtol=0)
    torch.testing.assert_close(explain(model, x, "encoder.2", method="1"), ref.mean(1),
                               atol=1e-5, rtol=0)


def test_no_upsample_gives_layer_resolution_and_normalize_range():
    model = _mnist()
    x = torch.rand(2, 1, 16, 16)
    small = AttentionExplainer(model, "encoder.2", upsample=False).method1(x)
    assert small.shape == (2, 4, 4)
    expected = reference_per_dimension(model, x, "encoder.2", "relu", resize=False).mean(dim=1)
    torch.testing.assert_close(small, expected, atol=1e-5, rtol=0)
    norm = AttentionExplainer(model, "encoder.2", activation="abs", normalize=True).method2(x)
    assert norm.amin(dim=(1, 2)).abs().max() < 1e-6
    assert (norm.amax(dim=(1, 2)) - 1).abs().max() < 1e-5


def test_no_side_effects():
    model = _mnist()
    model.train()
    model.decoder.eval()  # a mixed state must come back exactly
    flags = {name: m.training for name, m in model.named_modules()}
    explainer = AttentionExplainer(model, "encoder.2")
    x = torch.rand(3, 1, 16, 16)
    explainer.method1(x)
    explainer.method2(x)
    explainer.per_dimension(x, differentiable=True).sum()
    assert all(p.grad is None for p in model.parameters())
    assert {name: m.training for name, m in model.named_modules()} == flags
    assert all(not m._forward_hooks and not m._backward_hooks for m in model.modules())


def test_differentiable_mode_reaches_encoder_weights_and_plain_mode_keeps_no_graph():
    model = _mnist()
    x = torch.rand(3, 1, 16, 16)
    explainer = AttentionExplainer(model, "encoder.2")
    maps = explainer.per_dimension(x, differentiable=True)
    assert maps.requires_grad
    first_conv = model.encoder[0].weight
    (grad,) = torch.autograd.grad(maps.pow(2).sum(), first_conv)
    assert grad.abs().sum() > 0
    plain = explainer.per_dimension(x)
    assert not plain.requires_grad and plain.grad_fn is None


def test_differentiable_fast_path_gradient_equals_generic():
    model = _mnist()
    x = torch.rand(3, 1, 16, 16)
    grads = []
    for fast_path in ("auto", "off"):
        maps = AttentionExplainer(model, "encoder.2", fast_path=fast_path).per_dimension(
            x, differentiable=True
        )
        grads.append(torch.autograd.grad(maps.pow(2).sum(), list(model.encoder.parameters())))
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-4)


def test_fast_path_follows_weight_updates():
    """The fast path's cached weight copy is refreshed after in-place updates and reloads."""
    model = _mnist()
    x = torch.rand(3, 1, 16, 16)
    fast = AttentionExplainer(model, "encoder.2")
    generic = AttentionExplainer(model, "encoder.2", fast_path="off")
    fast.per_dimension(x)  # fills the cache
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    model.loss(model(x), x).total.backward()
    optimizer.step()  # in-place update of the Linear weight
    torch.testing.assert_close(fast.per_dimension(x), generic.per_dimension(x), atol=1e-5, rtol=0)
    model.load_state_dict(_mnist(seed=5).state_dict())
    torch.testing.assert_close(fast.per_dimension(x), generic.per_dimension(x), atol=1e-5, rtol=0)


def test_fast_path_scratch_reuse_keeps_results_independent():
    """Calls with growing and shrinking batches reuse V's scratch buffer without mixing results."""
    model = _mnist()
    fast = AttentionExplainer(model, "encoder.2")
    generic = AttentionExplainer(model, "encoder.2", fast_path="off")
    batches = [torch.rand(n, 1, 16, 16) for n in (7, 2, 9, 7)]
    results = [fast.per_dimension(x) for x in batches]
    for x, got in zip(batches, results, strict=True):
        torch.testing.assert_close(got, generic.per_dimension(x), atol=1e-5, rtol=0)


def test_bfloat16_close_to_float32():
    model = _mnist()
    x = torch.rand(4, 1, 16, 16)
    ref = AttentionExplainer(model, "encoder.2").method1(x)
    got = AttentionExplainer(model.to(torch.bfloat16), "encoder.2").method1(x.bfloat16())
    assert got.dtype == torch.float32 and torch.isfinite(got).all()
    corr = torch.corrcoef(torch.stack([got.flatten(), ref.flatten()]))[0, 1]
    assert corr > 0.95


def test_normal_difference_matches_weighted_reference():
    model = _mnist()
    train = torch.rand(20, 1, 16, 16)
    stats = LatentStats.from_batches(model, [train[:10], train[10:]])
    x = torch.rand(5, 1, 16, 16)
    model.eval()
    with torch.no_grad():
        mu, logvar = model.encode(x)
    direction = (mu - stats.mean) / (stats.var + logvar.exp())
    ref_dims = reference_per_dimension(model, x, "encoder.2", "none", resize=False)
    # Eq. 2 is linear in alpha before the activation: weight the signed per-dim maps.
    expected = torch.relu((ref_dims * direction[:, :, None, None]).sum(1, keepdim=True))
    expected = upsample(expected, x.shape[-2:])[:, 0]
    got = AttentionExplainer(model, "encoder.2").normal_difference(x, stats)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    sampled = AttentionExplainer(model, "encoder.2").normal_difference(
        x, stats, sample=True, generator=torch.Generator().manual_seed(0)
    )
    # d drawn from N(mu_y - mu_x, sigma_x^2 + sigma_y^2) with the same noise.
    var = stats.var + logvar.exp()
    noise = torch.randn(mu.shape, generator=torch.Generator().manual_seed(0))
    drawn = (mu - stats.mean + noise * var.sqrt()) / var
    expected = torch.relu((ref_dims * drawn[:, :, None, None]).sum(1, keepdim=True))
    torch.testing.assert_close(sampled, upsample(expected, x.shape[-2:])[:, 0], atol=1e-5, rtol=0)
    assert (sampled - got).abs().max() > 1e-4  # the draw matters


def test_latent_stats_pool_moments():
    model = _mnist()
    data = torch.rand(12, 1, 16, 16)
    stats = LatentStats.from_batches(model, [data[:5], data[5:]])
    with torch.no_grad():
        mu, logvar = model.encode(data)
    torch.testing.assert_close(stats.mean, mu.mean(0), atol=1e-6, rtol=1e-5)
    expected_var = (logvar.exp() + mu**2).mean(0) - mu.mean(0) ** 2
    torch.testing.assert_close(stats.var, expected_var, atol=1e-5, rtol=1e-4)


def test_bad_layer_and_bad_input_shape_give_clear_errors():
    model = _mnist()
    with pytest.raises(ConfigError, match="unknown layer 'encoder.9'.*encoder.0, encoder.2"):
        AttentionExplainer(model, "encoder.9")
    with pytest.raises(ConfigError, match="not a \\(B, C, h, w\\) feature map"):
        AttentionExplainer(model, "encoder.5").method1(torch.rand(2, 1, 16, 16))
    with pytest.raises(ConfigError, match="expects \\(B, 1, 16, 16\\)"):
        AttentionExplainer(model, "encoder.2").method1(torch.rand(2, 1, 28, 28))
    with pytest.raises(ConfigError, match="unknown activation"):
        AttentionExplainer(model, "encoder.2", activation="tanh")
    with pytest.raises(ConfigError, match="unknown method"):
        AttentionExplainer(model, "encoder.2").explain(torch.rand(1, 1, 16, 16), method="3")
