"""The engine on encoders people really write: layers as modules or lists, any encode output."""

from __future__ import annotations

import pytest
import torch
from attention_reference import per_dimension_of
from torch import nn
from torch.distributions import Independent, Normal
from torch.utils.data import DataLoader, TensorDataset

from vaecam.attention import AttentionExplainer, LatentStats, explain
from vaecam.errors import ConfigError, DataError
from vaecam.models import build_model

LATENT = 4
FORMS = ["tuple", "mu", "dict-mu", "dict-loc", "normal", "independent"]


class FormVAE(nn.Module):
    """No ``latent_dim`` attribute, no ``input_shape``; ``encode`` returns the posterior in
    ``form``. ``side`` is a conv that only feeds logvar."""

    def __init__(self, form: str = "tuple"):
        super().__init__()
        self.form = form
        self.conv1 = nn.Conv2d(1, 4, 3, 2, 1)
        self.conv2 = nn.Conv2d(4, 6, 3, 2, 1)
        self.side = nn.Conv2d(4, 2, 3, 2, 1)
        self.fc_mu = nn.Linear(6 * 4 * 4, LATENT)
        self.fc_logvar = nn.Linear(2 * 4 * 4, LATENT)

    def parameters_of(self, x):
        h = torch.relu(self.conv1(x))
        mu = self.fc_mu(torch.tanh(self.conv2(h)).flatten(1))
        return mu, self.fc_logvar(self.side(h).flatten(1))

    def encode(self, x):
        mu, logvar = self.parameters_of(x)
        scale = (0.5 * logvar).exp()
        return {
            "tuple": (mu, logvar),
            "mu": mu,
            "dict-mu": {"mu": mu, "logvar": logvar},
            "dict-loc": {"loc": mu, "scale": scale},
            "normal": Normal(mu, scale),
            "independent": Independent(Normal(mu, scale), 1),
            "triple": (mu, logvar, mu),
            "string": "mu",
            "vector": mu[:, 0],
        }[self.form]


def _model(form="tuple"):
    torch.manual_seed(0)
    return FormVAE(form).eval()


@pytest.mark.parametrize("form", FORMS)
def test_every_encode_form_gives_the_reference_maps(form):
    model = _model(form)
    x = torch.rand(3, 1, 16, 16)
    ref = per_dimension_of(model.conv2, lambda t: model.parameters_of(t)[0], x)
    assert ref.abs().max() > 1e-4
    got = AttentionExplainer(model, "conv2").per_dimension(x)
    torch.testing.assert_close(got, ref, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("form", [f for f in FORMS if f != "mu"])
def test_normal_difference_and_stats_read_the_variance_of_every_form(form):
    x, train = torch.rand(3, 1, 16, 16), torch.rand(8, 1, 16, 16)
    stats = LatentStats.from_batches(_model("tuple"), [train])
    got_stats = LatentStats.from_batches(_model(form), [train])
    torch.testing.assert_close(got_stats.mean, stats.mean)
    torch.testing.assert_close(got_stats.var, stats.var)
    expected = AttentionExplainer(_model("tuple"), "conv2").normal_difference(x, stats)
    got = AttentionExplainer(_model(form), "conv2").normal_difference(x, stats)
    torch.testing.assert_close(got, expected)


def test_forms_without_variance_or_of_unknown_shape_are_refused_in_one_line():
    x = torch.rand(2, 1, 16, 16)
    stats = LatentStats(torch.zeros(LATENT), torch.ones(LATENT))
    cases = {
        "mu": "needs the posterior variance",
        "triple": "tuple of 3 items",
        "string": "encode\\(\\) returned str",
        "vector": "shape \\(2,\\), not \\(B, D\\)",
    }
    for form, message in cases.items():
        with pytest.raises(ConfigError, match=message) as error:
            AttentionExplainer(_model(form), "conv2").normal_difference(x, stats)
        assert "\n" not in str(error.value)
    with pytest.raises(ConfigError, match="no posterior variance"):
        LatentStats.from_batches(_model("mu"), [x])
    with pytest.raises(ConfigError, match="dict without a 'mu', 'loc', 'mean' or 'embedding'"):
        AttentionExplainer(nn.Sequential(nn.Conv2d(1, 2, 3)), "0",
                           encode=lambda t: {"z": t}).method1(x)


def test_encode_callable_for_a_model_without_encode():
    model = _model()
    body = nn.ModuleDict({"conv1": model.conv1, "conv2": model.conv2, "fc_mu": model.fc_mu})
    x = torch.rand(3, 1, 16, 16)

    def encode(t):
        return body["fc_mu"](torch.tanh(body["conv2"](torch.relu(body["conv1"](t)))).flatten(1))

    with pytest.raises(ConfigError, match="no encode\\(x\\) method; pass encode="):
        AttentionExplainer(body, "conv2")
    got = AttentionExplainer(body, "conv2", encode=encode).per_dimension(x)
    torch.testing.assert_close(got, per_dimension_of(body["conv2"], encode, x),
                               atol=1e-6, rtol=1e-5)


def test_layer_as_module_and_layer_lists_from_one_forward_pass():
    torch.manual_seed(0)
    model = build_model("mnist-vae", input_shape=(1, 16, 16), latent_dim=5, channels=(4, 6),
                        hidden=12)
    x = torch.rand(3, 1, 16, 16)
    calls = [0]

    def counting_encode(t):
        calls[0] += 1
        return model.encode(t)

    by_module = AttentionExplainer(model, model.encoder[2])
    assert by_module.layer_name == "encoder.2"
    torch.testing.assert_close(by_module.method1(x),
                               AttentionExplainer(model, "encoder.2").method1(x))
    names = ["encoder.2", "encoder.0"]
    both = AttentionExplainer(model, [model.encoder[2], "encoder.0"], encode=counting_encode)
    for method in ("per_dimension", "method1", "method2"):
        calls[0] = 0
        maps = getattr(both, method)(x)
        assert calls[0] == 1 and list(maps) == names
        for name in names:
            alone = getattr(AttentionExplainer(model, name), method)(x)
            torch.testing.assert_close(maps[name], alone, atol=1e-6, rtol=1e-5)
    maps = both.per_dimension(x, differentiable=True)
    grads = torch.autograd.grad(sum(m.pow(2).sum() for m in maps.values()), model.encoder[0].weight)
    assert grads[0].abs().sum() > 0
    listed = explain(model, x, ["encoder.0"], method="2", activation="abs")
    assert isinstance(listed, dict) and list(listed) == ["encoder.0"]


def test_layer_errors_are_one_line():
    model, x = _model(), torch.rand(2, 1, 16, 16)
    with pytest.raises(ConfigError, match="not part of the model"):
        AttentionExplainer(model, nn.Conv2d(1, 4, 3))
    with pytest.raises(ConfigError, match="no layer given"):
        AttentionExplainer(model, [])
    with pytest.raises(ConfigError, match="mu does not depend on layer 'side'"):
        AttentionExplainer(model, ["conv2", "side"]).method1(x)
    with pytest.raises(ConfigError, match="mu does not depend on layer 'side'"):
        AttentionExplainer(model, "side").method2(x)
    model.requires_grad_(False)  # a frozen encoder: mu then has no graph at all
    with pytest.raises(ConfigError, match="mu does not depend on layer\\(s\\) side"):
        AttentionExplainer(model, "side").method2(x)
    with pytest.raises(ConfigError, match="latent dims \\[4\\] out of range 0..3"):
        AttentionExplainer(model, "conv2").per_dimension(x, dims=[4])


def test_latent_stats_accept_labelled_loaders_and_restore_modes():
    model = _model()
    data, labels = torch.rand(10, 1, 16, 16), torch.arange(10)
    plain = LatentStats.from_batches(model, [data[:4], data[4:]])
    loader = DataLoader(TensorDataset(data, labels), batch_size=4)
    from_pairs = LatentStats.from_batches(model, loader)
    from_lists = LatentStats.from_batches(model, [[data[:6]], [data[6:]]])
    for stats in (from_pairs, from_lists):
        torch.testing.assert_close(stats.mean, plain.mean)
        torch.testing.assert_close(stats.var, plain.var)
    with torch.no_grad():
        mu, logvar = model.parameters_of(data)
    torch.testing.assert_close(plain.mean, mu.mean(0))
    model.train()
    model.conv1.eval()
    LatentStats.from_batches(model, [data])
    assert model.training and not model.conv1.training and model.conv2.training
    with pytest.raises(DataError, match="not images"):
        LatentStats.from_batches(model, [{"x": data}])
    with pytest.raises(DataError, match="no training images"):
        LatentStats.from_batches(model, [])
