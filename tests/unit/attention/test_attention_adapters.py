"""Encoder outputs of common VAE libraries and spatial latents, read without a user wrapper."""

from __future__ import annotations

from collections import OrderedDict
from types import SimpleNamespace

import pytest
import torch
from attention_reference import per_dimension_of
from torch import nn
from torch.distributions import Independent, Normal

from vaecam.attention import AttentionExplainer, LatentLayout, LatentStats
from vaecam.errors import ConfigError

CHANNELS = 2  # latent channels of the spatial model; its latent is 2 x 4 x 4 = 32 units


class ModelOutput(OrderedDict):
    """A stand-in for pythae's ``ModelOutput``: a dict whose fields are also attributes."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class SpatialVAE(nn.Module):
    """A conv encoder whose last conv gives mean and log-variance maps (as diffusers' does);
    ``encode`` returns them in the given ``form``."""

    def __init__(self, form: str):
        super().__init__()
        self.form = form
        self.conv_in = nn.Conv2d(3, 4, 3, 2, 1)
        self.conv_mid = nn.Conv2d(4, 6, 3, 2, 1)
        self.conv_out = nn.Conv2d(6, 2 * CHANNELS, 3, 1, 1)

    def moments(self, x):
        h = torch.tanh(self.conv_mid(torch.relu(self.conv_in(x))))
        return self.conv_out(h).chunk(2, dim=1)

    def encode(self, x):
        mean, logvar = self.moments(x)
        std = (0.5 * logvar).exp()
        diagonal = SimpleNamespace(mean=mean, logvar=logvar, std=std, var=std**2)
        return {
            "latent_dist": SimpleNamespace(latent_dist=diagonal),  # diffusers AutoencoderKL
            "latent_dist-dict": OrderedDict(latent_dist=diagonal),  # BaseOutput is a dict too
            "pythae": ModelOutput(embedding=mean, log_covariance=logvar),
            "independent": Independent(Normal(mean, std), 3),
            "normal": Normal(mean, std),
            "tuple": (mean, logvar),
            "dict-mean": {"mean": mean, "std": std},
        }[self.form]


FORMS = ["latent_dist", "latent_dist-dict", "pythae", "independent", "normal", "tuple",
         "dict-mean"]


def _model(form="tuple"):
    torch.manual_seed(0)
    return SpatialVAE(form).eval()


def _flat_mean(model):
    return lambda t: model.moments(t)[0].flatten(1)


@pytest.mark.parametrize("form", FORMS)
def test_every_library_form_gives_the_per_unit_reference_maps(form):
    model, x = _model(form), torch.rand(3, 3, 16, 16)
    ref = per_dimension_of(model.conv_mid, _flat_mean(model), x)
    assert ref.shape == (3, CHANNELS * 16, 16, 16) and ref.abs().max() > 1e-4
    got = AttentionExplainer(model, "conv_mid").per_dimension(x)
    torch.testing.assert_close(got, ref, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("form", [f for f in FORMS if f != "tuple"])
def test_variance_of_every_form_matches_the_tuple_form(form):
    train = torch.rand(6, 3, 16, 16)
    expected = LatentStats.from_batches(_model("tuple"), [train])
    got = LatentStats.from_batches(_model(form), [train])
    assert got.mean.shape == (CHANNELS * 16,)
    torch.testing.assert_close(got.mean, expected.mean)
    torch.testing.assert_close(got.var, expected.var)


def test_layout_names_units_by_channel_and_position():
    model, x = _model("latent_dist"), torch.rand(2, 3, 16, 16)
    explainer = AttentionExplainer(model, "conv_mid")
    layout = explainer.latent_layout(x)
    assert layout == LatentLayout((CHANNELS, 4, 4)) and layout.size == 32
    assert layout.index(1, 2, 3) == 16 + 2 * 4 + 3
    assert layout.position(27) == (1, 2, 3)
    assert all(layout.index(*layout.position(u)) == u for u in range(layout.size))
    assert layout.units(channel=1) == list(range(16, 32))
    assert layout.units(y=0, x=1) == [1, 17]
    ref = per_dimension_of(model.conv_mid, _flat_mean(model), x)
    one = explainer.per_dimension(x, dims=[layout.index(1, 2, 3)])
    torch.testing.assert_close(one[:, 0], ref[:, 27], atol=1e-6, rtol=1e-5)
    channel = explainer.method1(x, dims=layout.units(channel=1))
    torch.testing.assert_close(channel, ref[:, 16:].mean(dim=1), atol=1e-6, rtol=1e-5)
    for bad in (lambda: layout.index(2, 0, 0), lambda: layout.index(0, 0),
                lambda: layout.position(32), lambda: layout.units(channel=2),
                lambda: LatentLayout((8,)).units(channel=0)):
        with pytest.raises(ConfigError) as error:
            bad()
        assert "\n" not in str(error.value)


def test_unreadable_outputs_say_which_forms_work():
    model, x = _model(), torch.rand(2, 3, 16, 16)
    for output, message in [
        (SimpleNamespace(z=1), "returned SimpleNamespace; return"),
        (ModelOutput(recon_x=x), "dict without a 'mu', 'loc', 'mean' or 'embedding'"),
        ((x, x, x), "tuple of 3 items"),
    ]:
        with pytest.raises(ConfigError, match=message) as error:
            AttentionExplainer(model, "conv_mid", encode=lambda t, out=output: out).method1(x)
        assert "\n" not in str(error.value)
