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
from vaecam.training.factorvae_module import (
    ADLossSettings,
    FactorVAEModule,
    OptimiserSettings,
    ScoreSettings,
)
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
        FactorVAEModule({"latent_dim": 4}, variant="ad-factorvae",
                        ad=ADLossSettings(lambda_ad=-0.5))
    with pytest.raises(ConfigError, match="pairs"):
        FactorVAEModule({"latent_dim": 4}, variant="ad-factorvae",
                        ad=ADLossSettings(ad_pairs=7))
    with pytest.raises(ConfigError, match="layer"):
        FactorVAEModule({"latent_dim": 4}, variant="ad-factorvae",
                        ad=ADLossSettings(ad_layer="encoder.99"))
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


def test_settings_validate_with_one_line_errors() -> None:
    with pytest.raises(ConfigError, match="AD activation"):
        ADLossSettings(ad_activation="tanh")
    with pytest.raises(ConfigError, match="AD aggregation"):
        ADLossSettings(ad_aggregation="max")
    with pytest.raises(ConfigError, match="score_every must be >= 0"):
        ScoreSettings(score_every=-1)
    with pytest.raises(ConfigError, match="needs the ground-truth data"):
        ScoreSettings(score_every=2)
    with pytest.raises(AttributeError):  # frozen
        OptimiserSettings().lr = 1.0  # type: ignore[misc]


# The hyperparameters a checkpoint stored when every setting was a constructor argument of its
# own: the layout that checkpoints and run identities (train_config.json) keep.
FLAT_HPARAMS = {
    "model_config": {"latent_dim": 4}, "variant": "ad-factorvae", "gamma": 10.0,
    "lambda_ad": 2.5, "ad_layer": "encoder.4", "ad_activation": "abs", "ad_pairs": 3,
    "ad_aggregation": "sum", "lr": 1e-3, "betas": (0.8, 0.99), "d_lr": 2e-4,
    "d_betas": (0.4, 0.8), "seed": 5, "score_every": 4,
    "score_sizes": {"batch_size": 8, "num_train": 6, "num_eval": 4, "num_variance_estimate": 64},
}


def _grouped_module(score_data=None) -> FactorVAEModule:
    h = FLAT_HPARAMS
    return FactorVAEModule(
        h["model_config"], variant=h["variant"], gamma=h["gamma"],
        ad=ADLossSettings(lambda_ad=h["lambda_ad"], ad_layer=h["ad_layer"],
                          ad_activation=h["ad_activation"], ad_pairs=h["ad_pairs"],
                          ad_aggregation=h["ad_aggregation"]),
        optimisers=OptimiserSettings(lr=h["lr"], betas=h["betas"], d_lr=h["d_lr"],
                                     d_betas=h["d_betas"]),
        seed=h["seed"],
        scoring=ScoreSettings(score_every=h["score_every"], score_sizes=h["score_sizes"],
                              score_data=score_data),
    )


def test_grouped_settings_save_the_flat_hparams_layout() -> None:
    from vaecam.data.dsprites_procedural import DSpritesProcedural

    module = _grouped_module(DSpritesProcedural())
    assert list(module.hparams) == list(FLAT_HPARAMS)  # same keys, same order
    assert dict(module.hparams) == FLAT_HPARAMS
    defaults = FactorVAEModule({"latent_dim": 4})
    assert dict(defaults.hparams) == {
        "model_config": {"latent_dim": 4}, "variant": "factorvae", "gamma": 40.0,
        "lambda_ad": 1.0, "ad_layer": None, "ad_activation": "relu", "ad_pairs": "all",
        "ad_aggregation": "mean", "lr": 1e-4, "betas": (0.9, 0.999), "d_lr": 1e-4,
        "d_betas": (0.5, 0.9), "seed": 0, "score_every": 0, "score_sizes": None}


def test_checkpoint_with_the_old_flat_hparams_loads(tmp_path: Path) -> None:
    from vaecam.data.dsprites_procedural import DSpritesProcedural
    from vaecam.training.checkpoints import vaecam_metadata

    trained = _grouped_module(DSpritesProcedural())
    with torch.no_grad():  # weights that differ from a fresh module of the same seed
        for parameter in trained.parameters():
            parameter.add_(0.5)
    path = tmp_path / "old.ckpt"
    torch.save({"state_dict": trained.state_dict(), "hyper_parameters": dict(FLAT_HPARAMS),
                "hparams_name": "kwargs", "global_step": 7,
                "vaecam": vaecam_metadata(trained.model, **trained.metadata(), dsprites="x.npz")},
               path)

    loaded = FactorVAEModule.load_from_checkpoint(path)
    assert loaded.variant == "ad-factorvae" and loaded.gamma == 10.0 and loaded.seed == 5
    assert loaded.ad == ADLossSettings(2.5, "encoder.4", "abs", 3, "sum")
    assert loaded.explainer is not None and loaded.explainer.layer_name == "encoder.4"
    assert loaded.optimisers == OptimiserSettings(1e-3, (0.8, 0.99), 2e-4, (0.4, 0.8))
    vae_opt, d_opt = loaded.configure_optimizers()
    assert vae_opt.defaults["lr"] == 1e-3 and vae_opt.defaults["betas"] == (0.8, 0.99)
    assert d_opt.defaults["lr"] == 2e-4 and d_opt.defaults["betas"] == (0.4, 0.8)
    assert loaded.scoring.score_every == 0  # no data to score on was given
    assert loaded.score_sizes == FLAT_HPARAMS["score_sizes"]
    assert loaded.extra_metadata == {"dsprites": "x.npz"}
    for key, value in trained.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value, msg=key)

    data = DSpritesProcedural()
    scored = FactorVAEModule.load_from_checkpoint(path, score_data=data)
    assert scored.scoring.score_every == 4 and scored.scoring.score_data is data
