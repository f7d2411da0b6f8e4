"""FactorVAE networks, TC / discriminator losses and the training module."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from vaecam.attention.channel_gradients import find_linear_head
from vaecam.errors import ConfigError
from vaecam.losses.factorvae import discriminator_loss, permute_dims, total_correlation
from vaecam.models import build_model
from vaecam.models.factorvae import Discriminator, FactorVAE
from vaecam.training.checkpoints import load_model
from vaecam.training.factorvae_module import FactorVAEModule
from vaecam.training.trainer import TrainConfig, fit


def binary_images(n: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 1, 64, 64, generator=gen) > 0.9).float()


def test_shapes_and_loss() -> None:
    model = build_model("factorvae")
    assert isinstance(model, FactorVAE) and model.latent_dim == 32
    x = binary_images(5)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (5, 32)
    out = model.train()(x, generator=torch.Generator().manual_seed(0))
    assert out.recon.shape == out.logits.shape == x.shape
    assert 0 <= out.recon.min() and out.recon.max() <= 1
    terms = model.loss(out, x)
    expected = nn.functional.binary_cross_entropy(out.recon, x, reduction="sum") / 5
    assert terms.recon.item() == pytest.approx(expected.item(), rel=1e-4)
    assert math.isfinite(terms.total.item())
    # the last conv is followed by ReLU -> Flatten -> Linear: the attention fast path applies
    assert isinstance(model.get_submodule(model.default_layer), nn.Conv2d)
    assert model.default_layer == "encoder.6"
    assert find_linear_head(model, model.default_layer) is not None
    assert build_model("factorvae", latent_dim=10).encode(x)[0].shape == (5, 10)


def test_discriminator_shape() -> None:
    disc = Discriminator(32)
    linears = [m for m in disc.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 6 and all(m.out_features == 1000 for m in linears[:-1])
    slopes = {m.negative_slope for m in disc.modules() if isinstance(m, nn.LeakyReLU)}
    assert slopes == {0.2}
    assert disc(torch.randn(7, 32)).shape == (7, 2)


def test_init_switch() -> None:
    torch.manual_seed(0)
    default = build_model("factorvae", init="default")
    torch.manual_seed(0)
    plain = nn.Conv2d(1, 32, 4, 2, 1)  # PyTorch's own init, same RNG state
    torch.testing.assert_close(default.encoder[0].weight, plain.weight)
    normal = build_model("factorvae", init="normal")
    kaiming = build_model("factorvae", init="kaiming-normal")
    conv = normal.encoder[2]
    assert conv.weight.std().item() == pytest.approx(0.02, rel=0.1)
    assert torch.count_nonzero(conv.bias) == 0
    fan_in = 32 * 4 * 4
    assert kaiming.encoder[2].weight.std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=0.1)
    assert torch.count_nonzero(Discriminator(8, init="normal").net[0].bias) == 0
    with pytest.raises(ConfigError):
        build_model("factorvae", init="xavier")


def test_permute_dims_is_independent_per_dim_and_keeps_marginals() -> None:
    b, d = 64, 8
    z = torch.arange(b, dtype=torch.float32)[:, None].repeat(1, d) + 1000 * torch.arange(d)
    perm = permute_dims(z, torch.Generator().manual_seed(0))
    torch.testing.assert_close(perm.sort(dim=0).values, z)  # every column keeps its values
    order = (perm - 1000 * torch.arange(d)).long()  # the permutation applied to each column
    assert len({tuple(order[:, j].tolist()) for j in range(d)}) == d  # all different
    assert not torch.equal(order[:, 0], torch.arange(b))
    again = permute_dims(z, torch.Generator().manual_seed(0))
    assert torch.equal(perm, again)


def test_tc_sign() -> None:
    head = nn.Linear(4, 2)
    nn.init.zeros_(head.weight)
    with torch.no_grad():
        head.bias.copy_(torch.tensor([1.5, -0.5]))  # D is sure the samples come from q(z)
    z = torch.randn(10, 4)
    assert total_correlation(head, z).item() == pytest.approx(2.0)
    with torch.no_grad():
        head.bias.copy_(torch.tensor([-1.0, 1.0]))
    assert total_correlation(head, z).item() == pytest.approx(-2.0)


def test_discriminator_loss_gives_no_gradient_to_vae() -> None:
    model = build_model("factorvae", latent_dim=8).train()
    disc = Discriminator(8)
    out = model(binary_images(8), generator=torch.Generator().manual_seed(0))
    assert out.z.requires_grad
    loss = discriminator_loss(disc, out.z[:4], out.z[4:], torch.Generator().manual_seed(1))
    loss.backward()
    assert all(p.grad is None for p in model.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in disc.parameters())
    assert loss.item() == pytest.approx(math.log(2), abs=0.1)  # untrained D: chance level
    total_correlation(disc, out.z).backward()  # while the TC term does train the encoder
    assert model.encoder[0].weight.grad.abs().sum() > 0


def test_module_validates_options() -> None:
    with pytest.raises(ConfigError, match="gamma"):
        FactorVAEModule({"latent_dim": 4}, gamma=-1.0)
    with pytest.raises(ConfigError, match="lambda"):
        FactorVAEModule({"latent_dim": 4}, variant="ad-factorvae", lambda_ad=-0.5)
    with pytest.raises(ConfigError, match="pairs"):
        FactorVAEModule({"latent_dim": 4}, variant="ad-factorvae", ad_pairs=7)
    with pytest.raises(ConfigError, match="layer"):
        FactorVAEModule({"latent_dim": 4}, variant="ad-factorvae", ad_layer="encoder.99")
    with pytest.raises(ConfigError, match="model"):
        FactorVAEModule({"latent_dim": 4}, variant="beta-vae")


def _run(out: Path, max_steps: int, resume: bool = False) -> Path:
    module = FactorVAEModule({"latent_dim": 4}, variant="ad-factorvae", gamma=10.0, seed=3)
    cfg = TrainConfig(out_dir=out, max_steps=max_steps, max_epochs=-1, batch_size=4,
                      resume=resume, progress_bar=False, log_every_n_steps=1, seed=3)
    # Every image the same: the check is about the module's noise and optimiser state, not
    # about the data order of a resumed epoch (a trainer concern).
    return fit(module, TensorDataset(binary_images(1).repeat(8, 1, 1, 1)), cfg)


def test_resume_is_exact_and_checkpoint_loads_vae(tmp_path: Path) -> None:
    straight = _run(tmp_path / "straight", 4)
    _run(tmp_path / "split", 2)  # one epoch = 2 steps: checkpoints are written at epoch ends
    resumed = _run(tmp_path / "split", 4, resume=True)
    a = torch.load(straight, weights_only=True)
    b = torch.load(resumed, weights_only=True)
    assert a["global_step"] == b["global_step"] == 4  # iterations, not optimiser steps
    assert {k.split(".")[0] for k in a["state_dict"]} == {"model", "discriminator"}
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, msg=key)
    model, meta = load_model(straight, expected="factorvae")
    assert isinstance(model, FactorVAE) and meta["variant"] == "ad-factorvae"
    assert meta["gamma"] == 10.0 and meta["ad"]["layer"] == "encoder.6"
