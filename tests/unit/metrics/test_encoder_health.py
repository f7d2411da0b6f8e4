"""Encoder health against the layers run by hand, unit by unit, image by image."""

from __future__ import annotations

import statistics

import pytest
import torch
from torch import nn

from vaecam.metrics.encoder_health import (
    health_warning,
    layer_health,
    least_alive,
    model_health,
)
from vaecam.metrics.latent import latent_summary


class TinyEncoder(nn.Module):
    """Conv ReLU | Conv BatchNorm LeakyReLU | Flatten Linear ReLU, then mu/logvar heads, with
    chosen units forced dead."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 4, 3, 1, 1), nn.ReLU(),
            nn.Conv2d(4, 6, 3, 2, 1), nn.BatchNorm2d(6), nn.LeakyReLU(0.2),
            nn.Flatten(), nn.Linear(6 * 4 * 4, 10), nn.ReLU(),
        )
        self.fc_mu, self.fc_logvar = nn.Linear(10, 3), nn.Linear(10, 3)
        with torch.no_grad():
            conv1, conv2, bn, linear = (self.encoder[i] for i in (0, 2, 3, 6))
            conv1.weight[1:3] = 0  # channels 1 and 2 of conv1: always -1 -> dead
            conv1.bias[1:3] = -1
            bn.running_var.uniform_(0.5, 2)
            bn.bias[1:] = 2.0
            bn.weight[0], bn.bias[0] = 0.0, -3.0  # channel 0 after BatchNorm: always negative
            linear.weight[:7] = 0  # 7 of 10 hidden units dead
            linear.bias[:7] = -0.5
            linear.weight[7:] = linear.weight[7:].abs()  # 3 alive

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        return self.fc_mu(h), self.fc_logvar(h)


def reference(outputs: torch.Tensor, rectified: bool = True) -> tuple[float, float]:
    """Alive fraction and spread by loops: a unit is alive if positive (non-zero) anywhere on
    one image; spread: mean over units of the std over images of the unit's mean value."""
    n, units = outputs.shape[0], outputs.shape[1]
    alive, stds = 0, []
    for u in range(units):
        values, live = [], False
        for i in range(n):
            cells = outputs[i, u].flatten().tolist()
            live = live or any((c > 0) if rectified else (c != 0) for c in cells)
            values.append(sum(cells) / len(cells))
        alive += live
        stds.append(statistics.stdev(values))
    return alive / units, sum(stds) / units


def by_hand(model: TinyEncoder, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The activation outputs of the encoder, layer by layer (eval mode)."""
    e = model.encoder
    with torch.no_grad():
        a1 = torch.relu(e[0](x))
        z2 = e[3](e[2](a1))
        a2 = torch.where(z2 > 0, z2, 0.2 * z2)
        a3 = torch.relu(e[6](a2.flatten(1)))
    return {"encoder.0": a1, "encoder.2": a2, "encoder.6": a3, "pre_bn": z2}


def test_layer_health_matches_the_layers_run_by_hand():
    model = TinyEncoder().eval()
    x = torch.rand(12, 1, 8, 8)
    health = layer_health(model, x, batch_size=5)  # batches of 5, 5, 2
    assert list(health) == ["encoder.0", "encoder.2", "encoder.6"]
    outputs = by_hand(model, x)
    for name in health:
        alive, spread = reference(outputs[name])
        assert health[name].alive_fraction == pytest.approx(alive, abs=1e-12)
        assert health[name].spread == pytest.approx(spread, rel=1e-5)
    assert health["encoder.0"].alive_fraction == 0.5  # 2 of 4 channels forced dead
    assert health["encoder.2"].alive_fraction == pytest.approx(5 / 6)  # channel 0 negative
    assert health["encoder.6"].alive_fraction == pytest.approx(0.3)
    assert (health["encoder.6"].units, health["encoder.6"].kind) == (10, "Linear")
    assert health["encoder.0"].kind == "Conv2d"
    assert least_alive(health)[0] == "encoder.6"


def test_a_layer_without_activation_counts_non_zero_outputs():
    model = TinyEncoder().eval()
    x = torch.rand(9, 1, 8, 8)
    health = layer_health(model, x, layers=["encoder.3"])  # BatchNorm output, no rectifier
    alive, spread = reference(by_hand(model, x)["pre_bn"], rectified=False)
    assert health["encoder.3"].alive_fraction == alive == 1.0  # negative values are non-zero
    assert health["encoder.3"].spread == pytest.approx(spread, rel=1e-5)
    with pytest.raises(ValueError, match="no layer 'nope'"):
        layer_health(model, x, layers=["nope"])


def test_hooks_removed_mode_restored_no_gradients():
    model = TinyEncoder().train()
    bn = model.encoder[3]
    running = bn.running_mean.clone()
    layer_health(model, torch.rand(6, 1, 8, 8))
    assert model.training and bn.training
    torch.testing.assert_close(bn.running_mean, running)  # eval mode during the probe
    assert all(not m._forward_hooks for m in model.modules())
    assert all(p.grad is None for p in model.parameters())
    with pytest.raises(ValueError, match="at least 2 images"):
        layer_health(model, torch.rand(1, 1, 8, 8))


def test_a_rectifier_called_twice_is_reported_per_call():
    class Residual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.relu = nn.Conv2d(1, 3, 3, 1, 1), nn.ReLU()

        def encode(self, x):
            h = self.relu(self.conv(x))
            h = self.relu(h - 10.0)  # the same module again: everything dead
            return h.flatten(1)[:, :2], h.flatten(1)[:, :2]

    health = layer_health(Residual(), torch.rand(4, 1, 5, 5))
    assert list(health) == ["relu", "relu/call2"]
    assert health["relu/call2"].alive_fraction == 0.0 and health["relu"].kind == "ReLU"


def test_model_health_adds_the_least_alive_layer_to_the_latent_summary():
    model = TinyEncoder().eval()
    x = torch.rand(12, 1, 8, 8)
    record = model_health(model, x)
    summary = latent_summary(model, x)
    assert {k: record[k] for k in summary} == pytest.approx(summary)
    assert record["hidden_layer"] == "encoder.6" and record["hidden_kind"] == "Linear"
    assert record["hidden_alive"] == pytest.approx(0.3)
    assert record["encoder_layers"]["encoder.0"]["alive_fraction"] == 0.5


def test_health_warning_names_the_least_alive_layer_of_each_unhealthy_seed():
    healthy = {"hidden_alive": 0.9, "hidden_layer": "encoder.7", "hidden_kind": "Linear",
               "active_units": 5, "latent_dim": 32, "kl": 12.0}
    dead = {**healthy, "hidden_alive": 0.15}
    collapsed = {**healthy, "active_units": 0, "kl": 0.04}
    assert health_warning({0: healthy, 1: None}) == ""
    line = health_warning({0: healthy, 1: dead, 2: collapsed})
    assert "\n" not in line and "seed 0" not in line
    assert "seed 1: encoder layer encoder.7 (Linear) 15% alive, 5 of 32 latent units" in line
    assert "seed 2: encoder layer encoder.7 (Linear) 90% alive, 0 of 32 latent units" in line
    assert "--lr" in line  # advice for a dead layer
    assert "--free-bits" in health_warning({2: collapsed})  # advice for a collapse alone
