"""FactorVAE metric and MIG on synthetic ground truth whose observation is the factor vector."""

import numpy as np
import pytest
import torch

from vaecam.data.dsprites_procedural import DSpritesProcedural
from vaecam.data.ground_truth import GroundTruthData
from vaecam.metrics.disentanglement import (
    FACTORVAE_METRIC_PRESETS,
    factor_vae_metric,
    mig,
    torch_representation,
)

PRESET = FACTORVAE_METRIC_PRESETS["reproduction"]


class FactorsAsObservations(GroundTruthData):
    """Six factors, the first constant like dSprites colour; an observation is its factors."""

    factor_names = ("color", "a", "b", "c", "d", "e")
    factor_sizes = (1, 3, 6, 10, 8, 12)
    observation_shape = (6,)

    def observations_from_factors(self, factors: np.ndarray) -> np.ndarray:
        return np.asarray(factors, dtype=np.float32)


DATA = FactorsAsObservations()


def noisy(codes_fn, seed=0, scale=0.01):
    """A representation adding small seeded Gaussian noise to ``codes_fn(observations)``."""
    rng = np.random.default_rng(seed)

    def represent(observations):
        codes = codes_fn(observations)
        return codes + scale * rng.standard_normal(codes.shape)

    return represent


def identity(observations):
    return observations.astype(np.float64)


PERMUTATION = [3, 0, 5, 2, 1, 4]  # latent i reads factor PERMUTATION[i]; latent 1: the colour


def permuted(observations):
    return observations[:, PERMUTATION] * np.array([2.0, 1.0, 0.5, 3.0, 1.0, 0.2])


def test_identity_and_permuted_identity_score_high():
    for representation, latent_of_factor in (
        (identity, [1, 2, 3, 4, 5]),
        (permuted, [4, 3, 0, 5, 2]),
    ):
        result = factor_vae_metric(DATA, noisy(representation), seed=0, **PRESET)
        assert result["eval_accuracy"] >= 0.95 and result["train_accuracy"] >= 0.95
        assert result["factor_names"] == ["a", "b", "c", "d", "e"]
        assert result["num_active_dims"] == 5  # the constant colour latent is pruned
        assert result["train_votes"].sum() == PRESET["num_train"]
        assert result["eval_votes"].sum() == PRESET["num_eval"]
        assert result["train_votes"].argmax(axis=1).tolist() == latent_of_factor

        scores = mig(DATA, noisy(representation), seed=0)
        assert scores["mig"] > 0.9
        assert scores["mutual_info"].shape == (6, 5) and scores["per_factor"].shape == (5,)
        assert scores["mutual_info"].argmax(axis=0).tolist() == latent_of_factor


def test_collapsed_representation_scores_zero():
    def zeros(observations):
        return np.zeros((len(observations), 4))

    result = factor_vae_metric(DATA, zeros, seed=0, **PRESET)
    assert result["num_active_dims"] == 0 and result["active_dims"].size == 0
    assert result["train_accuracy"] == 0.0 and result["eval_accuracy"] == 0.0
    assert result["train_votes"].shape == (5, 4) and result["train_votes"].sum() == 0
    assert mig(DATA, zeros, seed=0)["mig"] == pytest.approx(0.0, abs=1e-12)


def test_random_representation_scores_low():
    noise_only = noisy(lambda observations: np.zeros((len(observations), 6)), scale=1.0)
    result = factor_vae_metric(DATA, noise_only, seed=0, **{**PRESET, "num_eval": 1000})
    assert result["num_active_dims"] == 6
    assert result["eval_accuracy"] <= 0.3  # chance is 1/5
    assert mig(DATA, noise_only, seed=0)["mig"] < 0.05


def test_same_seed_gives_identical_results():
    first = factor_vae_metric(DATA, noisy(permuted, seed=3, scale=1.0), seed=7, **PRESET)
    second = factor_vae_metric(DATA, noisy(permuted, seed=3, scale=1.0), seed=7, **PRESET)
    assert first["eval_accuracy"] == second["eval_accuracy"]
    assert np.array_equal(first["train_votes"], second["train_votes"])
    assert np.array_equal(first["eval_votes"], second["eval_votes"])
    other = factor_vae_metric(DATA, noisy(permuted, seed=3, scale=1.0), seed=8, **PRESET)
    assert not np.array_equal(first["train_votes"], other["train_votes"])
    # MIG does not depend on the order of the latents: permuting the code's columns keeps it
    def code(observations):  # a deterministic, slightly distorted code
        c = permuted(observations)
        return c + 0.01 * np.sin(7.0 * c + np.arange(c.shape[1]))

    order = np.array([4, 0, 5, 2, 1, 3])
    direct = mig(DATA, code, seed=7)["mig"]
    assert mig(DATA, lambda o: code(o)[:, order], seed=7)["mig"] == pytest.approx(direct,
                                                                                abs=1e-12)
    assert 0.5 < direct < 1.0


def test_votes_name_original_latent_ids_after_pruning():
    """disentanglement_lib files argmin over active dims as a latent id; we map it back."""

    def collapsed_first(observations):
        codes = identity(observations)[:, 1:]  # latents 2..6 read factors a..e
        return np.concatenate([np.zeros((len(codes), 2)), codes], axis=1)

    result = factor_vae_metric(DATA, noisy(collapsed_first, scale=0.001), seed=0, **PRESET)
    assert result["active_dims"].tolist() == [2, 3, 4, 5, 6]
    assert result["num_active_dims"] == 5  # not the code size 7
    assert result["train_votes"].argmax(axis=1).tolist() == [2, 3, 4, 5, 6]
    assert result["train_votes"][:, :2].sum() == 0 and result["eval_votes"][:, :2].sum() == 0
    assert result["eval_accuracy"] >= 0.95


class LinearEncoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(6, 3)

    def encode(self, x):
        assert not self.training and not torch.is_grad_enabled()
        return self.linear(x), torch.zeros(len(x), 3)


def test_torch_representation_returns_mu_in_eval_mode():
    model = LinearEncoder().train()
    represent = torch_representation(model, "cpu", batch_size=4)
    observations = DATA.observations_from_factors(DATA.sample_factors(10, np.random.default_rng(0)))
    codes = represent(observations)
    assert isinstance(codes, np.ndarray) and codes.shape == (10, 3)
    with torch.no_grad():
        expected = model.linear(torch.from_numpy(observations)).numpy()
    np.testing.assert_allclose(codes, expected, rtol=1e-6)
    assert model.training  # restored


def test_hand_made_image_features_on_procedural_dsprites():
    """Centroid and size read from the images explain posX, posY and scale."""

    def features(observations):
        images = observations[:, 0]
        rows, columns = np.arange(64.0)[None, :, None], np.arange(64.0)[None, None, :]
        area = images.sum(axis=(1, 2))
        return np.stack(
            [
                (images * columns).sum(axis=(1, 2)) / area,
                (images * rows).sum(axis=(1, 2)) / area,
                np.sqrt(area),
            ],
            axis=1,
        )

    data = DSpritesProcedural()
    result = factor_vae_metric(
        data,
        features,
        seed=0,
        batch_size=64,
        num_train=150,
        num_eval=50,
        num_variance_estimate=2000,
    )
    assert result["factor_names"] == ["shape", "scale", "orientation", "posX", "posY"]
    votes = result["train_votes"]
    assert votes[[1, 3, 4]].argmax(axis=1).tolist() == [2, 0, 1]
    scores = mig(data, features, seed=0, num_train=2000)
    assert scores["per_factor"][3] > 0.5 and scores["per_factor"][4] > 0.5
