"""Slow, plain references of the attention maps, shared by the attention tests.

Eq. 1-2 of Liu et al.: one ``torch.autograd.grad`` per latent dimension, channel means of the
gradient, weighted channel sum, activation, bilinear upsampling. No shortcut of the engine is
used, so an engine bug cannot hide in its own reference.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ACTS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": torch.relu, "abs": torch.abs, "sigmoid": torch.sigmoid, "none": lambda t: t}


def upsample(maps: Tensor, size: tuple[int, int] | torch.Size) -> Tensor:
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=False)


def capture(layer: nn.Module, encode_mu: Callable[[Tensor], Tensor], x: Tensor
            ) -> tuple[Tensor, Tensor]:
    """(output of ``layer``, mu) of one forward pass, the output still in the graph of mu."""
    store = {}
    handle = layer.register_forward_hook(lambda m, i, o: store.__setitem__("A", o))
    try:
        mu = encode_mu(x)
    finally:
        handle.remove()
    return store["A"], mu


def capture_at(model: nn.Module, x: Tensor, layer_name: str) -> tuple[Tensor, Tensor]:
    """:func:`capture` for a VAE in eval mode whose ``encode`` returns (mu, logvar)."""
    model.eval()
    return capture(model.get_submodule(layer_name), lambda t: model.encode(t)[0], x)


def per_dimension_of(layer: nn.Module, encode_mu: Callable[[Tensor], Tensor], x: Tensor,
                     activation: str = "relu", resize: bool = True) -> Tensor:
    """(B, D, H, W) maps of ``layer`` for whatever computes ``mu`` from ``x``."""
    A, mu = capture(layer, encode_mu, x)
    maps = []
    for i in range(mu.shape[1]):
        (g,) = torch.autograd.grad(mu[:, i].sum(), A, retain_graph=True)
        alpha = g.mean(dim=(2, 3))
        maps.append(ACTS[activation]((alpha[:, :, None, None] * A).sum(dim=1)))
    maps = torch.stack(maps, dim=1).detach()
    return upsample(maps, x.shape[-2:]) if resize else maps


def reference_per_dimension(model: nn.Module, x: Tensor, layer_name: str,
                            activation: str = "relu", resize: bool = True) -> Tensor:
    """:func:`per_dimension_of` for a VAE in eval mode whose ``encode`` returns (mu, logvar)."""
    model.eval()
    return per_dimension_of(model.get_submodule(layer_name), lambda t: model.encode(t)[0], x,
                            activation, resize)


def reference_method2(model: nn.Module, x: Tensor, layer_name: str, activation: str,
                      rms: bool = False, order: str = "before") -> Tensor:
    """Method 2 written plainly: gradient of sum(mu), optional RMS over the batch, channel means,
    weighted channel sum; the activation at the layer's resolution (``before``) or on the
    upsampled map (``after-upsample``, the authors' order)."""
    A, mu = capture_at(model, x, layer_name)
    (g,) = torch.autograd.grad(mu.sum(), A)
    if rms:
        g = g / (torch.sqrt(torch.mean(g**2)) + 1e-5)
    alpha = g.mean(dim=(2, 3))
    signed = (alpha[:, :, None, None] * A).sum(dim=1, keepdim=True).detach()
    if order == "before":
        return upsample(ACTS[activation](signed), x.shape[-2:])[:, 0]
    return ACTS[activation](upsample(signed, x.shape[-2:]))[:, 0]
