"""When the Linear-head shortcut may be trusted: a one-time check, remembered per structure.

:func:`~vaecam.attention.channel_gradients.find_linear_head` sees only the ``nn.Sequential``
around the layer; ``encode`` may still use the layer output elsewhere (a skip path), reorder it
before the head (channels-last, a permutation) or let images interact. So the first time a
model, layer and module structure meet, the engine computes the channel weights of one random
latent direction both exactly (generic path) and through the shortcut; the shortcut is used from
then on only if they agree. The verdict is kept per model (weakly, so the model can be freed),
keyed by the layer, the module tree (names, types, train/eval flags) and the activation's shape;
a change of any of these is checked afresh.
"""

from __future__ import annotations

import weakref

import torch
from torch import Tensor, nn

# Relative disagreement (L2) above which the shortcut is rejected. Both paths are exact, so they
# differ by rounding only: measured on the paper's encoders about 1e-15 in float64, 3e-7 in
# float32 and 4e-3 in bfloat16; a structural mismatch shows up as O(1e-2) to O(1).
_TOLERANCE = {torch.float64: 1e-8, torch.float32: 1e-4}
_LOW_PRECISION_TOLERANCE = 3e-2
_SHARED: weakref.WeakKeyDictionary[nn.Module, dict[tuple[object, ...], bool]] = (
    weakref.WeakKeyDictionary()
)


def shared_verdicts(model: nn.Module) -> dict[tuple[object, ...], bool]:
    """The verdicts recorded for ``model`` and its own ``encode`` method, by structure key."""
    return _SHARED.setdefault(model, {})


def structure_key(model: nn.Module) -> tuple[object, ...]:
    """Names, types and train/eval flags of every sub-module: what the verdict depends on."""
    return tuple((name, type(m), m.training) for name, m in model.named_modules())


def check_direction(latent_dim: int) -> Tensor:
    """The fixed random direction (D,) used to check the shortcut: no coordinate is special."""
    return torch.randn(latent_dim, generator=torch.Generator().manual_seed(0))


def shortcut_agrees(shortcut: Tensor, exact: Tensor) -> bool | None:
    """Whether the shortcut's channel weights match the exact ones; None if both are zero
    (nothing learnt from this batch)."""
    tolerance = _TOLERANCE.get(exact.dtype, _LOW_PRECISION_TOLERANCE)
    shortcut, exact = shortcut.detach().cpu().double(), exact.detach().cpu().double()
    scale = max(exact.norm().item(), shortcut.norm().item())
    if scale == 0.0:
        return None
    return (shortcut - exact).norm().item() <= tolerance * scale
