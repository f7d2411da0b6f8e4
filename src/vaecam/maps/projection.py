"""``projection``: iterative energy-based projection onto the normal manifold (Dehaene et al.).

Dehaene et al., "Iterative energy-based projection on a normal data manifold for anomaly
localization" (ICLR 2020), move the *input* towards an image the autoencoder reconstructs well
while staying close to the original ``x_0``, by gradient descent on the energy::

    E(x_t) = L_r(x_t) + lambda * ||x_t - x_0||_1

with their tolerance-weighted step: the gradient is multiplied elementwise by the squared
reconstruction error, so well-reconstructed (normal) pixels barely move and badly reconstructed
ones converge faster::

    x_{t+1} = x_t - alpha * (dE/dx_t  *  (x_t - f(x_t))^2)

The anomaly map is ``|x_0 - x_T|``, mean over channels. ``T = 0`` gives an all-zero map.

vaecam's choices:

* ``f(x) = decode(mu(x))`` in eval mode (deterministic); the gradient of ``E`` flows through
  the whole VAE (``torch.autograd.grad`` w.r.t. the input only), one forward and one backward
  per step, so a map costs about ``T`` forward + backward passes of the model.
* ``loss``: ``squared`` (default) ``L_r = ||x - f(x)||^2`` summed over pixels, zero exactly
  when the image is its own reconstruction, whatever likelihood the model was trained with;
  ``model`` uses the model's ``reconstruction_loss`` (summed BCE for vaecam's VAEs, whose
  gradient in the image does not vanish at ``x = f(x)``).
* After each step the image is clamped to [0, 1], the range of vaecam's images and decoders.
* Defaults ``steps=10``, ``step_size=0.5``, ``distance_weight=0.1`` are vaecam's, set for [0, 1]
  images and losses summed over pixels (the paper tunes them per dataset): with the squared
  loss a pixel's error ``d`` shrinks roughly as ``d / sqrt(1 + 4 alpha t d^2)`` (about 0.5 ->
  0.2 in 10 steps, 0.05 -> 0.05), and the distance term stops pixels whose error is below
  ``lambda / 2``. Steps are few because each costs a forward and backward pass.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vaecam.errors import ConfigError
from vaecam.maps.base import AnomalyMap, ForwardCache, check_non_negative, check_positive, eval_mode
from vaecam.maps.registry import register_map

LOSSES = ("squared", "model")


def _reconstruction_energy(model: nn.Module, recon: Tensor, x: Tensor, loss: str) -> Tensor:
    """``L_r`` per image, shape (B,)."""
    if loss == "squared":
        return (x - recon).pow(2).flatten(1).sum(dim=1)
    return model.reconstruction_loss(recon, x)


def project(
    model: nn.Module,
    images: Tensor,
    steps: int = 10,
    step_size: float = 0.5,
    distance_weight: float = 0.1,
    loss: str = "squared",
) -> Tensor:
    """``x_T``: ``steps`` tolerance-weighted gradient steps on ``E`` from ``images`` (B, C, H, W).

    Runs the model in eval mode (flags restored); images are independent of each other.
    """
    x0 = images.detach()
    x = x0.clone()
    with eval_mode(model):
        for _ in range(steps):
            with torch.enable_grad():
                xt = x.clone().requires_grad_(True)
                mu, _ = model.encode(xt)
                recon = model.decode(mu)
                energy = _reconstruction_energy(model, recon, xt, loss).sum()
                energy = energy + distance_weight * (xt - x0).abs().sum()
                (grad,) = torch.autograd.grad(energy, xt)
            tolerance = (x - recon.detach()).pow(2)
            x = (x - step_size * grad * tolerance).clamp(0.0, 1.0)
    return x


@register_map
class ProjectionMap(AnomalyMap):
    """``|x_0 - x_T|`` after ``steps`` projection steps, mean over channels."""

    name = "projection"
    summary = "iterative energy-based projection, expensive"
    expensive = True
    reads_latent = True
    # each step is a forward and backward pass of the model: few candidates, T <= 10
    tuning_options = tuple({"steps": t, "distance_weight": w} for t in (5, 10) for w in (0.1, 0.3))

    def __init__(
        self,
        steps: int = 10,
        step_size: float = 0.5,
        distance_weight: float = 0.1,
        loss: str = "squared",
    ):
        if isinstance(steps, bool) or int(steps) != steps or steps < 0:
            raise ConfigError(f"projection steps must be an integer >= 0, got {steps}")
        if loss not in LOSSES:
            raise ConfigError(f"projection loss must be one of {', '.join(LOSSES)}, not '{loss}'")
        self.steps = int(steps)
        self.step_size = check_positive("projection step_size", step_size)
        self.distance_weight = check_non_negative("projection distance_weight", distance_weight)
        self.loss = loss

    @property
    def needs_loss(self) -> bool:  # type: ignore[override]
        return self.loss == "model"

    def compute(self, cache: ForwardCache) -> Tensor:
        projected = project(
            cache.model, cache.images, self.steps, self.step_size, self.distance_weight, self.loss
        )
        return (cache.images - projected).abs().mean(dim=1)
