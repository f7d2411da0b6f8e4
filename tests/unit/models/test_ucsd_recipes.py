"""The UCSD VAE's recipes beyond the paper: standardised input, calibrated Gaussian decoder,
BatchNorm/LeakyReLU encoder; each checked against a hand computation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vaecam.attention import AttentionExplainer
from vaecam.errors import ConfigError
from vaecam.models import build_model
from vaecam.models.ucsd import RECIPES

TINY = {"input_shape": [1, 24, 24], "latent_dim": 4, "channels": [4, 6, 8], "hidden": 16}


def _frames(n: int = 10, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (0.4 + 0.05 * torch.rand(n, 1, 24, 24, generator=g)).clamp(0, 1)


def test_paper_recipe_is_the_published_model_unchanged():
    paper = build_model("ucsd-vae", **TINY, **RECIPES["paper"])
    plain = build_model("ucsd-vae", **TINY)
    assert paper.state_dict().keys() == plain.state_dict().keys()
    assert not any(k.startswith("input_") for k in paper.state_dict())
    assert isinstance(paper.decoder[-1], nn.Sigmoid)
    paper.fit_data(_frames())  # no data constants: a no-op
    assert paper.conv_layers == {"conv1": "encoder.0", "conv2": "encoder.2", "conv3": "encoder.4"}


def test_fit_data_learns_mean_frame_and_spread():
    model = build_model("ucsd-vae", **TINY, **RECIPES["standardized"])
    frames = _frames()
    model.fit_data(frames)
    mean = frames.mean(dim=0, keepdim=True)
    spread = ((frames - mean) ** 2).mean().sqrt()
    torch.testing.assert_close(model.input_mean, mean)
    torch.testing.assert_close(model.input_spread, spread)
    with pytest.raises(ConfigError, match="identical"):
        model.fit_data(torch.full((3, 1, 24, 24), 0.5))


def test_standardised_encode_decode_and_gaussian_loss_match_a_hand_computation():
    model = build_model("ucsd-vae", **TINY, **RECIPES["standardized"]).eval()
    frames = _frames()
    model.fit_data(frames)
    x = frames[:3]
    mu, logvar = model.encode(x)
    standardised = (x - model.input_mean) / model.input_spread
    h = model.encoder(standardised)
    torch.testing.assert_close(mu, model.fc_mu(h))
    torch.testing.assert_close(logvar, model.fc_logvar(h))
    recon = model.decode(mu)
    torch.testing.assert_close(recon, model.input_mean + model.input_spread * model.decoder(mu))
    sigma = float(model.input_spread)
    expected = torch.stack([((r - t) ** 2).sum() / (2 * sigma**2) for r, t in zip(recon, x,
                                                                                 strict=True)])
    torch.testing.assert_close(model.reconstruction_loss(recon, x), expected)


def test_live_recipe_layers_and_checkpoint_round_trip():
    model = build_model("ucsd-vae", **TINY, **RECIPES["live"])
    model.fit_data(_frames())
    modules = dict(model.named_modules())
    assert model.conv_layers == {"conv1": "encoder.0", "conv2": "encoder.3", "conv3": "encoder.6"}
    for name in model.conv_layers.values():
        assert isinstance(modules[name], nn.Conv2d)
    assert any(isinstance(m, nn.BatchNorm1d) for m in model.encoder)
    assert sum(isinstance(m, nn.LeakyReLU) for m in model.encoder) == 4
    copy = build_model("ucsd-vae", **model.config)
    copy.load_state_dict(model.state_dict())
    x = _frames(4, seed=1)
    torch.testing.assert_close(copy.eval().encode(x)[0], model.eval().encode(x)[0])
    maps = AttentionExplainer(model, model.conv_layers["conv3"]).method1(x)
    assert maps.shape == (4, 24, 24) and torch.isfinite(maps).all()


def test_gaussian_loss_needs_standardisation():
    with pytest.raises(ConfigError, match="standardize"):
        build_model("ucsd-vae", **TINY, loss="gaussian")
    with pytest.raises(ConfigError, match="standardize"):
        build_model("ucsd-vae", **TINY, standardize=True, loss="bce")
