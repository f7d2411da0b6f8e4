"""AD loss (Liu et al. 2020) against a plain loop over pairs, pixels and images."""

from __future__ import annotations

import itertools

import pytest
import torch

from vaecam.attention import AttentionExplainer
from vaecam.errors import ConfigError
from vaecam.losses.ad import ad_loss, num_pairs, pairwise_overlap, select_pairs
from vaecam.models import build_model


def reference_overlap(a: torch.Tensor, b: torch.Tensor) -> float:
    """2 * sum_p min(a_p, b_p) / sum_p (a_p + b_p) for one image; 0/0 defined as 0."""
    num = 2 * sum(min(float(p), float(q)) for p, q in zip(a.flatten(), b.flatten(), strict=True))
    den = sum(float(p) + float(q) for p, q in zip(a.flatten(), b.flatten(), strict=True))
    return 0.0 if den == 0 else num / den


def reference_ad(maps: torch.Tensor, pairs: list[tuple[int, int]], aggregation: str) -> float:
    per_pair = []
    for i, j in pairs:
        per_image = [reference_overlap(m[i], m[j]) for m in maps]
        per_pair.append(sum(per_image) / len(per_image))
    return sum(per_pair) if aggregation == "sum" else sum(per_pair) / len(per_pair)


@pytest.fixture
def maps() -> torch.Tensor:
    """(3 images, 5 dims, 4x4) nonnegative maps with sparse supports and one all-zero map."""
    gen = torch.Generator().manual_seed(0)
    m = torch.relu(torch.randn(3, 5, 4, 4, generator=gen))
    m[1, 2] = 0.0  # a dead dim: its pairs with another dead map would be 0/0
    m[1, 3] = 0.0
    return m


@pytest.mark.parametrize("aggregation", ["sum", "mean"])
def test_all_pairs_match_reference(maps: torch.Tensor, aggregation: str) -> None:
    pairs = list(itertools.combinations(range(5), 2))
    expected = reference_ad(maps, pairs, aggregation)
    assert ad_loss(maps, "all", aggregation).item() == pytest.approx(expected, rel=1e-5)


def test_disjoint_supports_give_zero() -> None:
    maps = torch.zeros(2, 4, 3, 3)
    for d in range(4):
        maps[:, d].view(2, -1)[:, d] = 1.0 + d  # each dim on its own pixel
    assert ad_loss(maps).item() == pytest.approx(0.0, abs=1e-6)
    assert ad_loss(torch.zeros(2, 3, 4, 4)).item() == 0.0  # 0/0 is 0, no NaN


def test_identical_maps_give_one() -> None:
    one = torch.rand(2, 1, 5, 5) + 0.1
    assert ad_loss(one.repeat(1, 4, 1, 1), aggregation="mean").item() == pytest.approx(1.0)
    assert ad_loss(one.repeat(1, 4, 1, 1), aggregation="sum").item() == pytest.approx(6.0)


def test_sum_is_mean_times_pairs(maps: torch.Tensor) -> None:
    total = ad_loss(maps, aggregation="sum")
    assert total.item() == pytest.approx(ad_loss(maps, aggregation="mean").item() * num_pairs(5))


def test_k_random_pairs(maps: torch.Tensor) -> None:
    index = select_pairs(5, 4, torch.Generator().manual_seed(3))
    pairs = [tuple(p) for p in index.T.tolist()]
    assert len(set(pairs)) == 4 and all(i < j for i, j in pairs)
    again = select_pairs(5, 4, torch.Generator().manual_seed(3))
    assert torch.equal(index, again)
    value = ad_loss(maps, 4, "mean", torch.Generator().manual_seed(3))
    assert value.item() == pytest.approx(reference_ad(maps, pairs, "mean"), rel=1e-5)
    # k = every pair in a random order: the gather path agrees with the cdist path
    shuffled = select_pairs(5, 10, torch.Generator().manual_seed(1))
    torch.testing.assert_close(
        pairwise_overlap(maps, shuffled).mean(0).sort().values,
        pairwise_overlap(maps).mean(0).sort().values,
    )
    for bad in (0, 11, "some"):
        with pytest.raises(ConfigError):
            ad_loss(maps, bad)
    with pytest.raises(ConfigError):
        ad_loss(maps, aggregation="max")


def test_gradient_matches_finite_differences() -> None:
    gen = torch.Generator().manual_seed(1)
    maps = (torch.rand(2, 4, 3, 3, generator=gen, dtype=torch.float64) + 0.05).requires_grad_()
    assert torch.autograd.gradcheck(lambda m: ad_loss(m, "all", "sum"), (maps,))


def test_gradient_reaches_first_conv_through_attention_maps() -> None:
    torch.manual_seed(0)
    model = build_model("factorvae", latent_dim=6)
    x = (torch.rand(4, 1, 64, 64) > 0.8).float()
    explainer = AttentionExplainer(model, model.default_layer, upsample=False, eval_mode=False)
    maps = explainer.per_dimension(x, differentiable=True)
    assert maps.shape == (4, 6, 4, 4)
    loss = ad_loss(maps)
    (grad,) = torch.autograd.grad(loss, model.encoder[0].weight)
    assert grad.abs().sum() > 0
    # the engine's Linear-head fast path gives the gradient of its generic path
    generic = AttentionExplainer(model, model.default_layer, upsample=False, eval_mode=False,
                                 fast_path="off")
    (slow,) = torch.autograd.grad(ad_loss(generic.per_dimension(x, differentiable=True)),
                                  model.encoder[0].weight)
    torch.testing.assert_close(grad, slow, rtol=1e-4, atol=1e-7)
    detached = explainer.per_dimension(x, differentiable=False)
    assert not detached.requires_grad  # without the graph the loss could not train anything
