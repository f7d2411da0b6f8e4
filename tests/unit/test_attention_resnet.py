"""ResNet-layer attention: the ResNet18-VAE's stages against one autograd.grad per latent dim."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vaecam.attention import AttentionExplainer
from vaecam.models import build_model

LAYERS = ["encoder.layer2", "encoder.layer3", "encoder.layer4"]


@pytest.fixture(scope="module")
def resnet_vae():
    torch.manual_seed(0)
    model = build_model("resnet18-vae", input_shape=(3, 64, 64), latent_dim=3, hidden=16,
                        decoder_channels=(8, 8, 8, 8, 8, 8))
    return model.eval()


def reference_per_dimension(model, x, layer_name):
    """Eq. 1-2 with ReLU, written plainly: capture the stage output, then for each latent dim
    one gradient of sum_b mu[b, i], channel means, weighted sum, ReLU, bilinear upsampling."""
    store = {}
    handle = model.get_submodule(layer_name).register_forward_hook(
        lambda m, i, o: store.__setitem__("A", o))
    mu, _ = model.encode(x)
    handle.remove()
    A = store["A"]
    maps = []
    for i in range(mu.shape[1]):
        (g,) = torch.autograd.grad(mu[:, i].sum(), A, retain_graph=True)
        alpha = g.mean(dim=(2, 3))
        maps.append(torch.relu((alpha[:, :, None, None] * A).sum(dim=1)))
    maps = torch.stack(maps, dim=1).detach()
    return F.interpolate(maps, size=x.shape[-2:], mode="bilinear", align_corners=False)


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
