"""ResNet-layer attention: the ResNet18-VAE's stages against one autograd.grad per latent dim."""

from __future__ import annotations

import pytest
import torch
from attention_reference import reference_per_dimension

from vaecam.attention import AttentionExplainer
from vaecam.models import build_model

LAYERS = ["encoder.layer2", "encoder.layer3", "encoder.layer4"]


@pytest.fixture(scope="module")
def resnet_vae():
    torch.manual_seed(0)
    model = build_model("resnet18-vae", input_shape=(3, 64, 64), latent_dim=3, hidden=16,
                        decoder_channels=(8, 8, 8, 8, 8, 8))
    return model.eval()


def test_resnet_stages_match_reference(resnet_vae):
    x = torch.rand(2, 3, 64, 64)
    refs = {name: reference_per_dimension(resnet_vae, x, name) for name in LAYERS}
    together = AttentionExplainer(resnet_vae, LAYERS)
    per_dim, method1 = together.per_dimension(x), together.method1(x)
    assert list(per_dim) == LAYERS
    for name, ref in refs.items():
        scale = ref.abs().max()
        assert scale > 1e-6
        tol = {"atol": 1e-5 * scale, "rtol": 1e-4}
        assert per_dim[name].shape == (2, 3, 64, 64)
        torch.testing.assert_close(per_dim[name], ref, **tol)
        torch.testing.assert_close(method1[name], ref.mean(dim=1), **tol)
        alone = AttentionExplainer(resnet_vae, resnet_vae.get_submodule(name)).per_dimension(x)
        torch.testing.assert_close(alone, ref, **tol)
