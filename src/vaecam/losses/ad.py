"""Attention disentanglement (AD) loss of Liu et al. 2020, for AD-FactorVAE.

For latent dims ``i != j`` with nonnegative attention maps ``M^i, M^j`` of one image:

    L_AD(i, j) = 2 * sum_p min(M^i_p, M^j_p) / sum_p (M^i_p + M^j_p)

a soft Dice overlap in [0, 1]: 0 for disjoint supports, 1 for identical maps. When both maps are
zero everywhere (0/0; common with ReLU maps of an inactive dim) the overlap is defined as 0: the
denominator is clamped to ``EPS`` and the numerator is then 0. The value is averaged over the batch
and aggregated over pairs by ``sum`` or ``mean`` (the reproduction found that ``sum`` diverges).
With ReLU maps the loss is also driven to 0 by maps that vanish everywhere (0/0 counts as no
overlap); log it beside the reconstruction to see which way a run went.

All pairs are computed at once without materialising a (B, pairs, pixels) tensor, through the
identity ``min(a, b) = (a + b - |a - b|) / 2``:

    L_AD(i, j) = 1 - ||M^i - M^j||_1 / (S_i + S_j),   S_i = sum_p M^i_p

where the pairwise L1 distances of all maps are one ``torch.cdist(p=1)`` call.
"""

from __future__ import annotations

import torch
from torch import Tensor

from vaecam.errors import ConfigError

EPS = 1e-12
AGGREGATIONS = ("sum", "mean")


def num_pairs(num_dims: int) -> int:
    """Number of unordered pairs of distinct latent dims."""
    return num_dims * (num_dims - 1) // 2


def select_pairs(
    num_dims: int, pairs: str | int = "all", generator: torch.Generator | None = None
) -> Tensor:
    """Index pairs (2, P) with ``i < j``: all of them, or ``pairs`` distinct ones at random."""
    device = generator.device if generator is not None else None
    every = torch.triu_indices(num_dims, num_dims, offset=1, device=device)
    if pairs == "all":
        return every
    total = every.shape[1]
    if isinstance(pairs, bool) or not isinstance(pairs, int) or not 1 <= pairs <= total:
        raise ConfigError(
            f"AD pairs must be 'all' or a count from 1 to {total} for {num_dims} latent dims, "
            f"not {pairs!r}"
        )
    chosen = torch.randperm(total, generator=generator, device=device)[:pairs]
    return every[:, chosen]


def pairwise_overlap(maps: Tensor, index: Tensor | None = None) -> Tensor:
    """Soft Dice overlap of map pairs, per image: (B, P) for index pairs (2, P), default all.

    ``maps`` is (B, D, H, W) (or (B, D, N)) and nonnegative.
    """
    flat = maps.flatten(2)
    d = flat.shape[1]
    if index is None:
        index = torch.triu_indices(d, d, offset=1, device=flat.device)
    index = index.to(flat.device)
    mass = flat.sum(dim=-1)  # (B, D)
    denom = mass[:, index[0]] + mass[:, index[1]]
    if index.shape[1] == num_pairs(d):  # all pairs: one batched L1 distance matrix
        l1 = torch.cdist(flat, flat, p=1)[:, index[0], index[1]]
    else:
        l1 = (flat[:, index[0]] - flat[:, index[1]]).abs().sum(dim=-1)
    return (denom - l1) / denom.clamp_min(EPS)


def ad_loss(
    maps: Tensor,
    pairs: str | int = "all",
    aggregation: str = "mean",
    generator: torch.Generator | None = None,
) -> Tensor:
    """AD loss of per-dimension maps (B, D, H, W): batch mean of L_AD, aggregated over pairs.

    ``pairs`` is ``"all"`` (every ``i < j``) or ``k`` distinct random pairs drawn from
    ``generator``; ``aggregation`` is ``"sum"`` or ``"mean"`` over the pairs.
    """
    if aggregation not in AGGREGATIONS:
        raise ConfigError(
            f"AD aggregation must be one of {', '.join(AGGREGATIONS)}, not '{aggregation}'"
        )
    if maps.dim() < 3 or maps.shape[1] < 2:
        raise ConfigError(f"AD loss needs maps (B, D>=2, H, W), got shape {tuple(maps.shape)}")
    per_pair = pairwise_overlap(maps, select_pairs(maps.shape[1], pairs, generator)).mean(dim=0)
    return per_pair.sum() if aggregation == "sum" else per_pair.mean()
