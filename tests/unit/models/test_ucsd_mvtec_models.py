"""The UCSD VAE and the ResNet18-VAE: shapes, layer names, fast path, ImageNet weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.models import resnet18

from vaecam.attention import AttentionExplainer
from vaecam.attention.channel_gradients import find_linear_head
from vaecam.errors import ConfigError
from vaecam.models import build_model
from vaecam.models.mvtec import ResNet18VAE, imagenet_weights_file
from vaecam.models.ucsd import UCSDVAE

TINY_UCSD = {"input_shape": [1, 24, 24], "latent_dim": 4, "channels": [4, 6, 8], "hidden": 16}
TINY_RESNET = {"input_shape": [3, 64, 64], "latent_dim": 4, "hidden": 16,
               "decoder_channels": [16, 8, 8, 8, 8, 8]}


def test_ucsd_paper_architecture_shapes():
    model = build_model("ucsd-vae")
    assert model.feature_shape == (256, 12, 12)
    assert model.encoder[7].in_features == 36864 and model.encoder[7].out_features == 1024
    assert model.decoder[5].kernel_size == (5, 5)  # 12 -> 25, then 50 -> 100
    out = model.eval()(torch.rand(2, 1, 100, 100))
    assert out.recon.shape == (2, 1, 100, 100) and out.mu.shape == (2, 32)
    assert 0 <= out.recon.min() and out.recon.max() <= 1


@pytest.mark.parametrize("side", [(24, 24), (33, 41)])
def test_ucsd_sizes_come_from_configuration(side):
    model = build_model("ucsd-vae", **{**TINY_UCSD, "input_shape": [1, *side]})
    assert model(torch.rand(3, 1, *side)).recon.shape == (3, 1, *side)


def test_ucsd_layer_names_and_fast_path_on_last_conv():
    model = build_model("ucsd-vae", **TINY_UCSD).eval()
    modules = dict(model.named_modules())
    assert UCSDVAE.conv_layers == {"conv1": "encoder.0", "conv2": "encoder.2", "conv3": "encoder.4"}
    for name in UCSDVAE.conv_layers.values():
        assert isinstance(modules[name], torch.nn.Conv2d)
    assert find_linear_head(model, "encoder.4") is model.encoder[7]
    assert find_linear_head(model, "encoder.2") is None
    x = torch.rand(3, 1, 24, 24, generator=torch.Generator().manual_seed(0))
    fast = AttentionExplainer(model, "encoder.4", activation="abs", fast_path="auto")
    slow = AttentionExplainer(model, "encoder.4", activation="abs", fast_path="off")
    torch.testing.assert_close(fast.per_dimension(x), slow.per_dimension(x), atol=1e-5, rtol=0)
    torch.testing.assert_close(fast.method1(x), slow.method1(x), atol=1e-5, rtol=0)
    torch.testing.assert_close(fast.method2(x), slow.method2(x), atol=1e-5, rtol=0)


def test_ucsd_mse_loss_and_bad_config():
    model = build_model("ucsd-vae", **{**TINY_UCSD, "loss": "mse"})
    x = torch.rand(2, 1, 24, 24)
    out = model.eval()(x)
    expected = torch.stack([nn.functional.mse_loss(r, t, reduction="sum")
                            for r, t in zip(out.recon, x, strict=True)])
    torch.testing.assert_close(model.reconstruction_loss(out.recon, x), expected)
    with pytest.raises(ConfigError, match="bce"):
        build_model("ucsd-vae", **{**TINY_UCSD, "loss": "l1"})


def test_resnet_vae_shapes_and_layers_without_download(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "empty_hub"))
    model = build_model("resnet18-vae", **TINY_RESNET, pretrained=True).eval()
    assert model.config["pretrained"] is True
    assert model.config["pretrained_loaded"] is False and not model.pretrained_loaded
    out = model(torch.rand(2, 3, 64, 64))
    assert out.recon.shape == (2, 3, 64, 64) and out.mu.shape == (2, 4)
    assert model.default_layer == "encoder.layer4"
    names = dict(model.named_modules())
    assert all(module in names for module in ResNet18VAE.conv_layers.values())
    assert "encoder.avgpool" not in names and "encoder.fc" not in names
    maps = AttentionExplainer(model, "encoder.layer3").method1(torch.rand(2, 3, 64, 64))
    assert maps.shape == (2, 64, 64)


def test_resnet_vae_loads_cached_imagenet_weights_and_rebuild_skips_them(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    torch.manual_seed(1)
    reference = resnet18(weights=None).state_dict()
    path = imagenet_weights_file()
    path.parent.mkdir(parents=True)
    torch.save(reference, path)
    model = build_model("resnet18-vae", **TINY_RESNET, pretrained=True)
    assert model.config["pretrained_loaded"] is True
    torch.testing.assert_close(model.encoder.layer4[1].conv2.weight,
                               reference["layer4.1.conv2.weight"])
    path.unlink()  # a rebuild from a checkpoint never reads the hub cache
    rebuilt = build_model("resnet18-vae", **model.config)
    assert rebuilt.config["pretrained_loaded"] is True


def test_resnet_vae_rejects_bad_sizes():
    with pytest.raises(ConfigError, match="multiple of 64"):
        build_model("resnet18-vae", **{**TINY_RESNET, "input_shape": [3, 100, 100]})
