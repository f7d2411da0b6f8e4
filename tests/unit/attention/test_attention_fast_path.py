"""The Linear-head fast path never changes results, whatever the user's encoder does.

Each encoder below has the structure the shortcut looks for (layer -> pointwise -> Flatten ->
Linear inside an ``nn.Sequential``) but its ``encode`` breaks the shortcut's assumption: a skip
path from the layer output, features reordered before the head, or a BatchNorm that normalises
with batch statistics. Maps must equal a plain loop of ``torch.autograd.grad`` calls.
"""

from __future__ import annotations

import pytest
import torch
from attention_reference import reference_per_dimension
from torch import nn

import vaecam.attention.engine as engine
from vaecam.attention import AttentionExplainer
from vaecam.models import build_model

LATENT = 5


class UserVAE(nn.Module):
    """The paper's encoder trunk, used the way people write encoders.

    ``variant``: ``plain`` (the shortcut is exact), ``skip`` (a pooled skip path from the layer
    output into mu), ``channels-last`` (the layer output is permuted to (B, h, w, C) before
    Flatten), ``shuffled`` (flattened features permuted before the Linear), ``batch-stats``
    (BatchNorm2d(track_running_stats=False) between the layer and Flatten).
    """

    latent_dim = LATENT  # only for the engine before it learned to read D from mu

    def __init__(self, variant: str):
        super().__init__()
        self.variant = variant
        norm = [nn.BatchNorm2d(10, track_running_stats=False)] if variant == "batch-stats" else []
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 6, 4, 2, 1),
            nn.ReLU(),
            nn.Conv2d(6, 10, 4, 2, 1),  # encoder.2: the explained layer
            *norm,
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(10 * 4 * 4, 24),
            nn.ReLU(),
        )
        self.fc_mu = nn.Linear(24, LATENT)
        self.fc_logvar = nn.Linear(24, LATENT)
        self.skip = nn.Linear(10, LATENT)
        self.register_buffer("order", torch.randperm(10 * 4 * 4, generator=torch.Generator()
                                                     .manual_seed(1)))

    def encode(self, x):
        if self.variant in ("plain", "batch-stats"):
            h = self.encoder(x)
            return self.fc_mu(h), self.fc_logvar(h)
        a = self.encoder[:3](x)
        if self.variant == "skip":
            h = self.encoder[3:](a)
            return self.fc_mu(h) + self.skip(a.mean(dim=(2, 3))), self.fc_logvar(h)
        if self.variant == "channels-last":
            h = self.encoder[4:](self.encoder[3](a).permute(0, 2, 3, 1))
        else:  # shuffled
            h = self.encoder[5:](self.encoder[3:5](a)[:, self.order])
        return self.fc_mu(h), self.fc_logvar(h)


def _user_vae(variant: str) -> UserVAE:
    torch.manual_seed(0)
    return UserVAE(variant)


@pytest.mark.parametrize("variant", ["plain", "skip", "channels-last", "shuffled", "batch-stats"])
def test_fast_path_matches_reference_on_user_encoders(variant):
    model = _user_vae(variant)
    x = torch.rand(6, 1, 16, 16)
    ref = reference_per_dimension(model, x, "encoder.2")
    assert ref.abs().max() > 1e-4
    for _ in range(2):  # the first call checks the shortcut, the second uses the verdict
        got = AttentionExplainer(model, "encoder.2").per_dimension(x)
        torch.testing.assert_close(got, ref, atol=1e-5, rtol=0)


def _count_shortcut_calls(monkeypatch) -> list[int]:
    calls = [0]
    original = engine.linear_head_channel_weights

    def counting(*args, **kwargs):
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(engine, "linear_head_channel_weights", counting)
    return calls


@pytest.mark.parametrize(
    ("name", "config", "layer"),
    [
        ("mnist-vae", {"input_shape": (1, 16, 16), "latent_dim": 6, "channels": (4, 6),
                       "hidden": 12}, "encoder.2"),
        ("ucsd-vae", {"input_shape": (1, 16, 16), "latent_dim": 6, "channels": (4, 6, 8),
                      "hidden": 12}, "encoder.4"),
        ("factorvae", {"input_shape": (1, 32, 32), "latent_dim": 6, "channels": (4, 4, 6, 6),
                       "hidden": 12}, "encoder.6"),
    ],
)
def test_paper_encoders_keep_the_fast_path(monkeypatch, name, config, layer):
    torch.manual_seed(0)
    model = build_model(name, **config)
    x = torch.rand(4, *config["input_shape"])
    calls = _count_shortcut_calls(monkeypatch)
    fast = AttentionExplainer(model, layer)
    for _ in range(3):
        got = fast.per_dimension(x)
    assert calls[0] == 3
    generic = AttentionExplainer(model, layer, fast_path="off").per_dimension(x)
    torch.testing.assert_close(got, generic, atol=1e-5, rtol=0)


@pytest.mark.parametrize("variant", ["skip", "channels-last", "shuffled"])
def test_a_failed_check_is_remembered(monkeypatch, variant):
    """After the first call rejects the shortcut, later calls do not try it again."""
    model = _user_vae(variant)
    x = torch.rand(3, 1, 16, 16)
    calls = _count_shortcut_calls(monkeypatch)
    AttentionExplainer(model, "encoder.2").per_dimension(x)
    assert calls[0] == 1
    AttentionExplainer(model, "encoder.2").method1(x)
    assert calls[0] == 1


def test_batch_statistics_disqualify_the_shortcut(monkeypatch):
    """BatchNorm without running statistics (anywhere) or in training mode: no shortcut tried."""
    calls = _count_shortcut_calls(monkeypatch)
    model = _user_vae("batch-stats")
    AttentionExplainer(model, "encoder.2").per_dimension(torch.rand(3, 1, 16, 16))
    model = _user_vae("plain")
    # Not even on the path from the layer to mu: still ruled out (vaecam cannot see the path).
    model.extra_norm = nn.BatchNorm1d(3, track_running_stats=False)
    AttentionExplainer(model, "encoder.2").per_dimension(torch.rand(3, 1, 16, 16))
    model.extra_norm = nn.BatchNorm1d(3)  # running statistics, but in training mode
    model.train()
    AttentionExplainer(model, "encoder.2", eval_mode=False).per_dimension(torch.rand(3, 1, 16, 16))
    assert calls[0] == 0
    model.eval()  # eval mode with running statistics: the shortcut is allowed again
    AttentionExplainer(model, "encoder.2").per_dimension(torch.rand(3, 1, 16, 16))
    assert calls[0] == 1


def test_verdict_is_checked_again_when_the_mode_changes(monkeypatch):
    """The verdict is cached per model, layer and module structure (names, types, modes)."""
    model = _user_vae("plain")
    x = torch.rand(3, 1, 16, 16)
    checks = [0]
    original = engine.shortcut_agrees

    def counting(*args, **kwargs):
        checks[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(engine, "shortcut_agrees", counting)
    AttentionExplainer(model, "encoder.2").per_dimension(x)
    AttentionExplainer(model, "encoder.2").per_dimension(x)
    assert checks[0] == 1
    model.train()
    AttentionExplainer(model, "encoder.2", eval_mode=False).per_dimension(x)
    assert checks[0] == 2
    model.fc_mu = nn.Sequential(nn.Linear(24, LATENT), nn.Tanh())  # new structure
    got = AttentionExplainer(model, "encoder.2").per_dimension(x)
    assert checks[0] == 3
    torch.testing.assert_close(got, reference_per_dimension(model, x, "encoder.2"), atol=1e-5,
                               rtol=0)


def test_fast_path_under_bf16_autocast_is_close_to_fp32():
    """Autocast hands the shortcut bf16 masks: the fp32 scratch buffer must not be used then."""
    torch.manual_seed(0)
    model = build_model("mnist-vae", input_shape=[1, 16, 16], latent_dim=4, channels=[4, 8],
                        hidden=16).eval()
    x = torch.rand(5, 1, 16, 16)
    explainer = AttentionExplainer(model, "encoder.2", activation="abs")
    exact = explainer.method1(x)
    explainer.method1(x)  # the fp32 call leaves a scratch buffer behind
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = explainer.method1(x).float()
    assert torch.isfinite(low).all()
    assert (low - exact).norm() / exact.norm() < 5e-2
