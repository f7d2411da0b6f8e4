"""The function applied to the weighted channel sum (Eq. 2), and where it is applied.

The paper writes ReLU; the authors' public code uses abs; the reproduction also tried sigmoid.
``none`` keeps the signed map.

Order: vaecam applies the activation at the layer's resolution, ``before`` upsampling (as Eq. 2
reads); the authors' code (``gradcam.py`` of liuem607/expVAE) upsamples the signed map first and
takes ``abs`` after (``after-upsample``). Bilinear upsampling mixes neighbouring cells, so the two
differ wherever the signed map changes sign.
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
ACTIVATION_ORDERS = ("before", "after-upsample")


def get_activation(name: str) -> Callable[[Tensor], Tensor]:
    """The activation called ``name``; a clear error for an unknown one."""
    if name not in ACTIVATIONS:
        raise ConfigError(f"unknown activation '{name}'; choose one of: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def check_activation_order(order: str) -> str:
    """``order`` if it is one of :data:`ACTIVATION_ORDERS`; a clear error otherwise."""
    if order not in ACTIVATION_ORDERS:
        choices = ", ".join(ACTIVATION_ORDERS)
        raise ConfigError(f"unknown activation order '{order}'; choose one of: {choices}")
    return order
