"""Anomaly-map registry, --maps parser and one-line errors for bad options and models."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vaecam.attention import LatentStats
from vaecam.errors import ConfigError
from vaecam.maps import available_maps, build_map, cheap_maps, compute_maps, parse_maps
from vaecam.models import build_model
from vaecam.models.base import VAE

ALL_NAMES = {
    "recon-abs", "recon-sq", "ssim", "attention", "grad-elbo", "grad-kl", "grad-recon", "combi",
    "attention-x-recon", "projection", "recon-smooth", "mean-diff", "random",
}


def _mnist():
    torch.manual_seed(0)
    return build_model("mnist-vae", input_shape=(1, 8, 8), latent_dim=3, channels=(2, 3), hidden=8)


class EncoderOnly(nn.Module):
    """A user module with encode only (no decoder): attention works, nothing else."""

    latent_dim = 2
    input_shape = (1, 8, 8)

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, 2, 1)
        self.head = nn.Linear(3 * 4 * 4, 4)

    def encode(self, x):
        return self.head(torch.relu(self.conv(x)).flatten(1)).chunk(2, dim=1)


class NoDecodeVAE(VAE):
    """A VAE subclass that forgot to define decode."""

    default_layer = "conv"

    def __init__(self):
        super().__init__((1, 8, 8), 2)
        self.conv = nn.Conv2d(1, 3, 3, 2, 1)
        self.head = nn.Linear(3 * 4 * 4, 4)

    def encode(self, x):
        return self.head(torch.relu(self.conv(x)).flatten(1)).chunk(2, dim=1)


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message and message
    return message


def test_registry_lists_every_method_and_cheap_leaves_out_projection():
    assert set(available_maps()) == ALL_NAMES
    assert set(cheap_maps()) == ALL_NAMES - {"projection"}


def test_parse_names_keywords_order_and_repeats():
    labels = [m.label for m in parse_maps(" grad-kl, recon-abs ,grad-kl")]
    assert labels == ["grad-kl", "recon-abs"]
    assert {m.name for m in parse_maps("cheap")} == ALL_NAMES - {"projection"}
    assert {m.name for m in parse_maps("all")} == ALL_NAMES
    assert {m.name for m in parse_maps("cheap,projection")} == ALL_NAMES
    assert [m.name for m in parse_maps("projection,cheap")][0] == "projection"


def test_parse_passes_options_per_method():
    stats = LatentStats(torch.zeros(3), torch.ones(3))
    methods = parse_maps(
        "grad-kl,projection,attention",
        {"grad-kl": {"smooth_sigma": 0}, "projection": {"steps": 4},
         "attention": {"method": "normal-difference", "stats": stats},
         "combi": {"error": "abs"}},  # options of a map not selected are ignored
    )
    assert methods[0].smooth_sigma == 0
    assert methods[1].steps == 4
    assert methods[2].stats is stats and methods[2].label == "attention(method=normal-difference)"


@pytest.mark.parametrize("spec", ["recon-abs,foo", "foo", "Recon-abs"])
def test_unknown_map_name_lists_the_valid_ones(spec):
    with pytest.raises(ConfigError) as exc:
        parse_maps(spec)
    message = _one_line(exc)
    assert "unknown anomaly map" in message
    assert all(name in message for name in ALL_NAMES) and "cheap" in message and "all" in message


def test_empty_spec_unknown_option_and_options_for_unknown_map():
    with pytest.raises(ConfigError):
        parse_maps(" , ")
    with pytest.raises(ConfigError) as exc:
        build_map("grad-kl", sigma=1.0)
    assert "smooth_sigma" in _one_line(exc)
    with pytest.raises(ConfigError) as exc:
        parse_maps("grad-kl", {"gradkl": {"smooth_sigma": 1.0}})
    assert "gradkl" in _one_line(exc)
    with pytest.raises(ConfigError):
        build_map("nope")


@pytest.mark.parametrize(
    ("name", "options", "needle"),
    [
        ("projection", {"steps": -1}, "steps"),
        ("projection", {"steps": 1.5}, "steps"),
        ("projection", {"step_size": 0.0}, "step_size"),
        ("projection", {"step_size": -0.1}, "step_size"),
        ("projection", {"distance_weight": -1.0}, "distance_weight"),
        ("projection", {"loss": "l1"}, "loss"),
        ("grad-elbo", {"smooth_sigma": -0.5}, "smooth_sigma"),
        ("grad-kl", {"smooth_sigma": -1}, "smooth_sigma"),
        ("grad-recon", {"smooth_sigma": float("nan")}, "smooth_sigma"),
        ("combi", {"smooth_sigma": -1}, "smooth_sigma"),
        ("combi", {"normalize": "global"}, "normalize"),
        ("combi", {"error": "l2"}, "error"),
        ("attention", {"method": "3"}, "method"),
        ("attention", {"activation": "tanh"}, "activation"),
        ("attention", {"grad_norm": "rms"}, "grad_norm"),
        ("attention", {"method": "1", "grad_norm": "rms-batch"}, "method 2"),
        ("attention", {"method": "normal-difference"}, "statistics"),
        ("attention-x-recon", {"floor": -0.1}, "floor"),
        ("attention-x-recon", {"error": "l1"}, "error"),
        ("attention-x-recon", {"method": "normal-difference"}, "statistics"),
    ],
)
def test_bad_options_raise_one_line_config_error(name, options, needle):
    with pytest.raises(ConfigError) as exc:
        build_map(name, **options)
    assert needle in _one_line(exc)


def test_projection_accepts_zero_steps_and_zero_distance_weight():
    method = build_map("projection", steps=0, distance_weight=0.0)
    assert method.steps == 0 and method.distance_weight == 0


@pytest.mark.parametrize("model_cls", [EncoderOnly, NoDecodeVAE])
def test_model_without_decoder(model_cls):
    torch.manual_seed(0)
    model = model_cls()
    x = torch.rand(2, 1, 8, 8)
    model_free = {"mean-diff", "random"}  # the trivial references need no model
    for name in sorted(ALL_NAMES - {"attention"} - model_free):
        with pytest.raises(ConfigError) as exc:
            build_map(name)(model, x)
        assert "decode" in _one_line(exc)
    layer = "conv"
    maps = build_map("attention", layer=layer)(model, x)
    assert maps.shape == (2, 8, 8)
    assert build_map("random")(model, x).shape == (2, 8, 8)
    assert build_map("mean-diff", mean_image=x[0])(model, x).shape == (2, 8, 8)


def test_bad_images_and_repeated_labels():
    model = _mnist()
    with pytest.raises(ConfigError):
        compute_maps(model, torch.rand(1, 8, 8), parse_maps("recon-abs"))
    with pytest.raises(ConfigError):
        compute_maps(model, torch.rand(1, 1, 12, 12), parse_maps("recon-abs"))
    with pytest.raises(ConfigError) as exc:
        compute_maps(model, torch.rand(1, 1, 8, 8), [build_map("grad-kl"), build_map("grad-kl")])
    assert "twice" in _one_line(exc)
    with pytest.raises(ConfigError):
        compute_maps(model, torch.rand(1, 1, 8, 8), [])


def test_labels_of_attention_settings_differ():
    labels = {
        build_map("attention").label,
        build_map("attention", method="2", grad_norm="rms-image").label,
        build_map("attention", activation="abs", layer="encoder.0").label,
        build_map("attention-x-recon").label,
        build_map("attention-x-recon", activation="abs", error="squared").label,
    }
    assert len(labels) == 5
    assert build_map("attention-x-recon", activation="abs", floor=0.5).label == (
        "attention-x-recon(floor=0.5, activation=abs)"
    )


def test_model_without_reconstruction_loss():
    class PlainAutoencoder(nn.Module):
        input_shape = (1, 8, 8)
        latent_dim = 2

        def __init__(self):
            super().__init__()
            self.enc = nn.Linear(64, 4)
            self.dec = nn.Linear(2, 64)

        def encode(self, x):
            return self.enc(x.flatten(1)).chunk(2, dim=1)

        def decode(self, z):
            return torch.sigmoid(self.dec(z)).view(-1, 1, 8, 8)

    model = PlainAutoencoder()
    x = torch.rand(2, 1, 8, 8)
    for name in ("grad-elbo", "grad-kl", "grad-recon", "combi"):
        with pytest.raises(ConfigError) as exc:
            build_map(name)(model, x)
        assert "reconstruction_loss" in _one_line(exc)
    with pytest.raises(ConfigError):
        build_map("projection", loss="model")(model, x)
    for name in ("recon-abs", "recon-sq", "ssim", "projection"):
        assert build_map(name)(model, x).shape == (2, 8, 8)
