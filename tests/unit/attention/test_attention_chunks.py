"""Chunked directions, forward mode and float64: the same maps as the per-unit reference."""

from __future__ import annotations

import pytest
import torch
from attention_reference import per_dimension_of, reference_per_dimension
from test_attention_adapters import SpatialVAE, _flat_mean

import vaecam.attention.channel_gradients as channel_gradients
from vaecam.attention import AttentionExplainer
from vaecam.errors import ConfigError
from vaecam.models import build_model


def _spatial():
    torch.manual_seed(0)
    return SpatialVAE("latent_dist").eval()


@pytest.mark.parametrize("layer", ["conv_in", "conv_mid"])  # 4 and 6 channels, 32 units
@pytest.mark.parametrize("chunk", [None, 1, 5])
def test_forward_mode_in_chunks_equals_the_reference(layer, chunk):
    model, x = _spatial(), torch.rand(3, 3, 16, 16)
    explainer = AttentionExplainer(model, layer, chunk_size=chunk)
    activation = torch.zeros(1, model.get_submodule(layer).out_channels, 1, 1)
    assert channel_gradients.prefers_forward_mode(activation, torch.eye(32))
    ref = per_dimension_of(model.get_submodule(layer), _flat_mean(model), x)
    torch.testing.assert_close(explainer.per_dimension(x), ref, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(explainer.method1(x), ref.mean(1), atol=1e-6, rtol=1e-5)


def test_forward_and_reverse_mode_give_the_same_differentiable_maps(monkeypatch):
    model, x = _spatial(), torch.rand(2, 3, 16, 16)

    def grads():
        maps = AttentionExplainer(model, "conv_mid", chunk_size=7).per_dimension(
            x, differentiable=True)
        return maps, torch.autograd.grad(maps.pow(2).sum(), model.conv_in.weight)[0]

    forward_maps, forward_grad = grads()
    monkeypatch.setattr(channel_gradients, "_FORWARD_MODE_FACTOR", 10**6)  # reverse only
    reverse_maps, reverse_grad = grads()
    torch.testing.assert_close(forward_maps, reverse_maps, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(forward_grad, reverse_grad, atol=1e-5, rtol=1e-4)
    assert forward_grad.abs().sum() > 0


@pytest.mark.parametrize("fast_path", ["auto", "off"])
@pytest.mark.parametrize("layer", ["encoder.0", "encoder.2"])
@pytest.mark.parametrize("order", ["before", "after-upsample"])
def test_chunked_method1_and_per_dimension_equal_the_reference(fast_path, layer, order):
    torch.manual_seed(0)
    model = build_model("mnist-vae", input_shape=(1, 16, 16), latent_dim=7, channels=(6, 10),
                        hidden=20).eval()
    x = torch.rand(4, 1, 16, 16)
    ref = reference_per_dimension(model, x, layer, "relu", resize=order == "before")
    if order == "after-upsample":
        signed = reference_per_dimension(model, x, layer, "none", resize=False)
        ref = torch.relu(torch.nn.functional.interpolate(signed, size=(16, 16), mode="bilinear",
                                                         align_corners=False))
    for chunk in (1, 3, None):
        explainer = AttentionExplainer(model, layer, fast_path=fast_path, chunk_size=chunk,
                                       activation_order=order)
        torch.testing.assert_close(explainer.per_dimension(x), ref, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(explainer.method1(x), ref.mean(1), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("fast_path", ["auto", "off"])
def test_float64_models_give_float64_maps(fast_path):
    torch.manual_seed(0)
    model = build_model("mnist-vae", input_shape=(1, 16, 16), latent_dim=5, channels=(4, 6),
                        hidden=12).double().eval()
    x = torch.rand(3, 1, 16, 16, dtype=torch.float64)
    for layer in ("encoder.0", "encoder.2"):
        explainer = AttentionExplainer(model, layer, fast_path=fast_path, chunk_size=2)
        ref = reference_per_dimension(model, x, layer)
        assert ref.dtype == torch.float64
        maps = explainer.per_dimension(x)
        assert maps.dtype == torch.float64 and explainer.method1(x).dtype == torch.float64
        torch.testing.assert_close(maps, ref, atol=1e-12, rtol=1e-10)
        assert explainer.method2(x).dtype == torch.float64


def test_bad_chunk_sizes_are_one_line():
    model = _spatial()
    with pytest.raises(ConfigError, match="chunk size must be at least 1, not 0"):
        AttentionExplainer(model, "conv_mid", chunk_size=0)
