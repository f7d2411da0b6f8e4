"""The function applied to the weighted channel sum (Eq. 2).

The paper writes ReLU; the authors' public code uses abs; the reproduction also tried sigmoid.
``none`` keeps the signed map.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from vaecam.errors import ConfigError

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": torch.relu,
    "abs": torch.abs,
    "sigmoid": torch.sigmoid,
    "none": lambda t: t,
}


def get_activation(name: str) -> Callable[[Tensor], Tensor]:
    """The activation called ``name``; a clear error for an unknown one."""
    if name not in ACTIVATIONS:
        raise ConfigError(f"unknown activation '{name}'; choose one of: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]
